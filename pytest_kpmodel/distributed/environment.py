"""What the launchers told this process: torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``... (:func:`detect`), pytest-xdist's worker id, and the device each process
uses (:func:`rank_device`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import KpModelError


class DistributedError(KpModelError):
    """Ranks disagree, a collective failed or another rank failed."""


@dataclass(frozen=True)
class DistEnv:
    """What torchrun (or any ``env://`` launcher) told this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int_var(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"${name}={raw!r}: expected an integer") from None


def detect(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The distributed environment of this process; one rank when ``WORLD_SIZE`` is unset."""
    env = os.environ if environ is None else environ
    world = _int_var(env, "WORLD_SIZE", 1)
    if world < 1:
        raise DistributedError(f"$WORLD_SIZE={world}: must be >= 1")
    rank = _int_var(env, "RANK", 0)
    if not 0 <= rank < world:
        raise DistributedError(f"$RANK={rank}: must be in [0, $WORLD_SIZE={world})")
    local_rank = _int_var(env, "LOCAL_RANK", rank if world > 1 else 0)
    local_world = _int_var(env, "LOCAL_WORLD_SIZE", world)
    if local_rank < 0:
        raise DistributedError(f"$LOCAL_RANK={local_rank}: must be >= 0")
    port = env.get("MASTER_PORT")
    out = DistEnv(
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        local_world_size=local_world,
        node_rank=_int_var(env, "GROUP_RANK", 0),
        master_addr=env.get("MASTER_ADDR") or None,
        master_port=_int_var(env, "MASTER_PORT", 0) if port else None,
    )
    if out.enabled and (out.master_addr is None or out.master_port is None):
        raise DistributedError(
            f"$WORLD_SIZE={world} but $MASTER_ADDR/$MASTER_PORT are not set: start the run with "
            "torchrun (python -m torch.distributed.run), which sets them"
        )
    return out


def is_main_process(environ: Mapping[str, str] | None = None) -> bool:
    """True on rank 0 and in a one-process run (never raises: a bad environment counts as main,
    and the run's first collective reports it)."""
    try:
        return detect(environ).is_main
    except DistributedError:
        return True


# -- devices -----------------------------------------------------------------------------------
def xdist_worker(environ: Mapping[str, str] | None = None) -> str | None:
    """The pytest-xdist worker id (``"gw0"``...) of this process, None outside xdist."""
    env = os.environ if environ is None else environ
    return env.get("PYTEST_XDIST_WORKER") or None


def xdist_worker_index(environ: Mapping[str, str] | None = None) -> int | None:
    worker = xdist_worker(environ)
    if worker is None or not worker.startswith("gw") or not worker[2:].isdigit():
        return None
    return int(worker[2:])


def rank_device(requested: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--kp-device`` resolved for this process: ``cuda`` (or the default, on a machine with
    CUDA) becomes ``cuda:LOCAL_RANK`` under torchrun and ``cuda:K % count`` for xdist worker
    ``gwK`` when several GPUs are visible; an explicit ``cuda:N`` or ``cpu`` is honoured as
    given. A launcher that shows each process a single GPU (``CUDA_VISIBLE_DEVICES`` per task)
    gets ``cuda:0`` on every rank."""
    from ..settings import resolve_device

    device = resolve_device(requested)
    if not device.startswith("cuda") or requested not in (None, "", "auto", "cuda"):
        return device
    import torch

    count = torch.cuda.device_count()
    env = detect(environ)
    if env.enabled:
        if env.local_rank < count:
            return f"cuda:{env.local_rank}"
        if count == 1:
            return "cuda:0"
        raise DistributedError(
            f"$LOCAL_RANK={env.local_rank} but only {count} CUDA device(s) are visible on this "
            f"node: start at most {count} processes per node (torchrun --nproc_per_node)"
        )
    worker = xdist_worker_index(environ)
    if worker is not None and count > 1:
        return f"cuda:{worker % count}"
    return device
