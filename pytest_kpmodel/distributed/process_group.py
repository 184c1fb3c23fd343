"""The job's process group and this process's view of it (:class:`Group`): joined lazily at the
first collective (nccl on GPUs, gloo on the CPU; ``KPMODEL_DIST_BACKEND`` overrides,
``KPMODEL_DIST_TIMEOUT`` sets the timeout in seconds, default 1800), destroyed at the end of the
run (:func:`shutdown`).

Every rank must run the same collectives in the same order. Each collective step first
exchanges a tag naming the step (:meth:`Group.agree`); ranks that disagree fail with a message
naming both steps instead of hanging, and a rank that never arrives fails the others after the
timeout."""

from __future__ import annotations

import contextlib
import math
import os
import pickle
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from ..errors import KpModelError
from .environment import DistEnv, DistributedError, detect
from .sharding import shard_indices

ENV_BACKEND = "KPMODEL_DIST_BACKEND"
ENV_TIMEOUT = "KPMODEL_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0
SAME_TESTS = (
    "every rank must run the same kp tests in the same order (same files, -k/-m selection and "
    "options; no -x/--maxfail, no random test order)"
)


_STATE: dict[str, Any] = {"owned": False, "backend": None}


def default_backend(device: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    chosen = env.get(ENV_BACKEND)
    if chosen:
        return chosen
    return "nccl" if device.startswith("cuda") else "gloo"


def default_timeout(environ: Mapping[str, str] | None = None) -> timedelta:
    env = os.environ if environ is None else environ
    raw = env.get(ENV_TIMEOUT)
    if raw in (None, ""):
        return timedelta(seconds=DEFAULT_TIMEOUT_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds <= 0:
        raise DistributedError(f"${ENV_TIMEOUT}={raw!r}: expected a positive number of seconds")
    return timedelta(seconds=seconds)


def init_process_group(
    env: DistEnv, device: str, backend: str | None = None, timeout: timedelta | None = None
) -> str:
    """Join the job's process group (idempotent; a group someone else initialised is used as
    is and left to them). Returns the backend."""
    import torch
    import torch.distributed as dist

    if not env.enabled:
        return ""
    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed")
    if dist.is_initialized():
        return str(dist.get_backend())
    backend = backend or default_backend(device)
    if backend == "nccl" and device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    try:
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=env.rank,
            world_size=env.world_size,
            timeout=timeout or default_timeout(),
        )
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(
            f"rank {env.rank}: could not join the process group ({backend} at "
            f"{env.master_addr}:{env.master_port}, world size {env.world_size}): {exc}"
        ) from None
    _STATE["owned"], _STATE["backend"] = True, backend
    return backend


def shutdown() -> None:
    """Destroy the process group if this module created it (the plugin's pytest_unconfigure)."""
    if not _STATE["owned"]:
        return
    import torch.distributed as dist

    _STATE["owned"] = False
    if dist.is_initialized():
        with contextlib.suppress(Exception):  # a broken group must not fail the run's exit
            dist.destroy_process_group()


class Group:
    """This process's view of the run's ranks. With one rank every method is a plain local
    call; with several, every method is a collective: all ranks call it, in the same order."""

    def __init__(self, env: DistEnv, device: str, backend: str | None = None,
                 timeout: timedelta | None = None) -> None:  # fmt: skip
        self.env = env
        self.device = device
        self._backend = backend
        self._timeout = timeout
        self._broken: str | None = None
        self._step = 0

    @classmethod
    def from_env(cls, device: str) -> Group:
        return cls(detect(), device)

    @property
    def enabled(self) -> bool:
        return self.env.enabled

    @property
    def rank(self) -> int:
        return self.env.rank

    @property
    def world_size(self) -> int:
        return self.env.world_size

    @property
    def is_main(self) -> bool:
        return self.env.is_main

    def shard(self, n: int, batch_size: int = 1, strategy: str = "contiguous") -> list[int]:
        """This rank's indices of ``range(n)`` (whole batches; see :func:`shard_indices`)."""
        return shard_indices(n, self.world_size, self.rank, batch_size=batch_size,
                             strategy=strategy)  # fmt: skip

    # -- primitives ------------------------------------------------------------------------------
    def _comm_device(self):
        import torch

        if self._broken:
            raise DistributedError(self._broken)
        backend = init_process_group(self.env, self.device, self._backend, self._timeout)
        if "nccl" in backend and "gloo" not in backend:  # nccl moves CUDA tensors only
            return torch.device(self.device if self.device.startswith("cuda") else "cuda")
        return torch.device("cpu")

    @contextlib.contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        try:
            yield
        except DistributedError:
            raise
        except (RuntimeError, ValueError) as exc:  # DistBackendError, timeouts, closed sockets
            self._broken = (
                f"rank {self.rank}: {what} failed: {str(exc).strip().splitlines()[0]}; "
                f"{SAME_TESTS}; the timeout is ${ENV_TIMEOUT} seconds"
            )
            raise DistributedError(self._broken) from None

    def all_gather_bytes(self, data: bytes) -> list[bytes]:
        """Every rank's ``data``, in rank order (tensor collectives: no pickle)."""
        if not self.enabled:
            return [bytes(data)]
        import torch
        import torch.distributed as dist

        device = self._comm_device()
        with self._collective("all_gather"):
            size = torch.tensor([len(data)], dtype=torch.int64, device=device)
            sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
            dist.all_gather(sizes, size)
            lengths = [int(s.item()) for s in sizes]
            width = max(1, *lengths)
            buf = torch.zeros(width, dtype=torch.uint8, device=device)
            if data:
                buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
            outs = [torch.empty(width, dtype=torch.uint8, device=device)
                    for _ in range(self.world_size)]  # fmt: skip
            dist.all_gather(outs, buf)
        return [o[:n].cpu().numpy().tobytes() for o, n in zip(outs, lengths, strict=True)]

    def broadcast_bytes(self, data: bytes | None, src: int = 0) -> bytes:
        """``data`` of rank ``src`` on every rank."""
        if not self.enabled:
            return bytes(data or b"")
        import torch
        import torch.distributed as dist

        device = self._comm_device()
        with self._collective("broadcast"):
            mine = data or b""
            size = torch.tensor([len(mine) if self.rank == src else 0], dtype=torch.int64,
                                device=device)  # fmt: skip
            dist.broadcast(size, src)
            n = int(size.item())
            buf = torch.zeros(max(1, n), dtype=torch.uint8, device=device)
            if self.rank == src and mine:
                buf[:n] = torch.frombuffer(bytearray(mine), dtype=torch.uint8).to(device)
            dist.broadcast(buf, src)
        return buf[:n].cpu().numpy().tobytes()

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Small picklable objects from every rank (the job's own ranks: trusted peers)."""
        if not self.enabled:
            return [obj]
        return [pickle.loads(b) for b in self.all_gather_bytes(pickle.dumps(obj))]  # noqa: S301

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        if not self.enabled:
            return obj
        data = pickle.dumps(obj) if self.rank == src else None
        return pickle.loads(self.broadcast_bytes(data, src))  # noqa: S301

    def barrier(self, tag: str = "barrier") -> None:
        self.agree(tag)

    # -- steps -------------------------------------------------------------------------------------
    def agree(self, tag: str) -> None:
        """Check that every rank is at the same step (``tag``, numbered); raise on all of them
        otherwise. Every logical step starts with this, so ranks that drifted apart fail with a
        message instead of exchanging the wrong data."""
        if not self.enabled:
            return
        self._step += 1
        mine = f"#{self._step} {tag}"
        tags = self.all_gather_object(mine)
        if any(t != mine for t in tags):
            listing = "; ".join(f"rank {r}: {t}" for r, t in enumerate(tags))
            self._broken = f"the ranks are at different steps ({listing}): {SAME_TESTS}"
            raise DistributedError(self._broken)

    def on_main(self, tag: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed on rank 0 only, its value (or its error) on every rank. ``fn`` must
        not run collectives (compute what needs them, e.g. the predictions, before)."""
        if not self.enabled:
            return fn()
        self.agree(tag)
        local: BaseException | None = None
        payload = None
        if self.is_main:
            try:
                outcome: tuple[str, Any] = ("ok", fn())
            except KpModelError as exc:
                local, outcome = exc, ("kp", str(exc))
            except Exception as exc:  # noqa: BLE001 - the other ranks must hear about it
                local, outcome = exc, ("error", f"{type(exc).__name__}: {exc}")
            try:
                payload = pickle.dumps(outcome)
            except Exception as exc:  # noqa: BLE001
                local = local or exc
                payload = pickle.dumps(("error", f"result not transferable: {exc}"))
        kind, value = pickle.loads(self.broadcast_bytes(payload, 0))  # noqa: S301
        if local is not None:
            raise local
        if kind == "ok":
            return value
        if kind == "kp":
            raise KpModelError(value)
        raise DistributedError(f"{tag}: rank 0 failed: {value}")

    def gather_outcomes(self, tag: str, fn: Callable[[], bytes]) -> list[bytes]:
        """``fn()`` on every rank, every rank's bytes on every rank; when any rank fails, all of
        them raise (the failing rank its own error, the others a message naming it)."""
        if not self.enabled:
            return [fn()]
        self.agree(tag)
        local: BaseException | None = None
        data, error = b"", None
        try:
            data = fn()
        except KpModelError as exc:
            local, error = exc, ("kp", str(exc))
        except Exception as exc:  # noqa: BLE001
            local, error = exc, ("error", f"{type(exc).__name__}: {exc}")
        errors = self.all_gather_object(error)
        if local is not None:
            raise local
        for r, err in enumerate(errors):
            if err is not None:
                kind, msg = err
                cls = KpModelError if kind == "kp" else DistributedError
                raise cls(f"rank {r}: {msg}" if kind != "kp" else msg)
        return self.all_gather_bytes(data)
