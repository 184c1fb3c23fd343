"""Scale-out: torchrun (multi-GPU, multi-node) and pytest-xdist.

**torchrun.** ``torchrun --nproc_per_node=N -m pytest --kp-model=... specs/`` starts N pytest
processes, each collecting and running the same tests. The run's ``KpSession`` holds one
:class:`Group` (``session.dist``), which

- reads the torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...;
  :func:`detect`) and gives each rank its own device (``cuda:LOCAL_RANK``; :func:`rank_device`);
- initialises the process group lazily, at the first collective (nccl on GPUs, gloo on the CPU;
  ``KPMODEL_DIST_BACKEND`` overrides, ``KPMODEL_DIST_TIMEOUT`` sets the timeout in seconds,
  default 1800); the plugin destroys it at ``pytest_unconfigure`` (:func:`shutdown`);
- shards the evaluation set **by whole batches of the global order** (:func:`shard_indices`):
  every image is batched with the same neighbours as in a one-process run, so batched padding,
  and therefore every prediction, is the same; predictions travel between ranks as safetensors
  bytes (no pickle, dtypes kept), are merged back into the global image order, and every rank
  ends up with the full ``PredictionSet`` (:func:`predict_sharded`);
- evaluates once, on rank 0, and broadcasts the metrics (:meth:`Group.on_main`), so every
  rank's gates agree; the corruption sweep is sharded the same way (:class:`ShardedSweep`);
- keeps the prediction cache's key unchanged (the merged set is the one-process set): rank 0
  reads and writes the entry, under a file lock, and broadcasts a hit (:func:`cached_predictions`),
  which also works when the nodes of a multi-node job do not share a file system.

Every rank must run the same collectives in the same order, which holds when every rank runs the
same tests in the same order (the default: same command, same files). Each collective step first
exchanges a tag naming the step; ranks that disagree (a test skipped on one rank only, ``-x``
stopping one rank early, random test order) fail with a message naming both steps instead of
hanging, and a rank that never arrives fails the others after the timeout.

**pytest-xdist.** ``pytest -n N`` runs session fixtures once per worker; the prediction cache's
entry is computed by one worker while the others wait on its lock and then read it
(:func:`cache_lock`); with several GPUs visible, worker ``gwK`` uses ``cuda:K % count``; workers
send their checks and report sections to the controller, which writes the one report
(:func:`worker_output`, :func:`merge_worker_output`); :func:`xdist_reason` gives speed tests their skip reason.

Nothing here imports pytest, and torch is imported inside functions only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import KpModelError

if TYPE_CHECKING:
    from .adapters.base import Prediction
    from .data import CocoKeypointDataset
    from .predictions import PredictionSet

ENV_BACKEND = "KPMODEL_DIST_BACKEND"
ENV_TIMEOUT = "KPMODEL_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0
SAME_TESTS = (
    "every rank must run the same kp tests in the same order (same files, -k/-m selection and "
    "options; no -x/--maxfail, no random test order)"
)


class DistributedError(KpModelError):
    """Ranks disagree, a collective failed or another rank failed."""


# -- the torchrun environment --------------------------------------------------------------------
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


# -- devices ----------------------------------------------------------------------------------------
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
    from .settings import resolve_device

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


# -- the process group ------------------------------------------------------------------------------
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


# -- sharding ---------------------------------------------------------------------------------------
STRATEGIES = ("contiguous", "strided")


def shard_indices(n: int, world_size: int, rank: int, *, batch_size: int = 1,
                  strategy: str = "contiguous") -> list[int]:  # fmt: skip
    """The indices of ``range(n)`` that ``rank`` of ``world_size`` handles, made of whole
    batches of the global order (batch ``b`` = indices ``[b*batch_size, (b+1)*batch_size)``):

    - ``contiguous``: consecutive runs of batches, sizes differing by at most one batch;
    - ``strided``: batch ``b`` goes to rank ``b % world_size``.

    Either way the shards partition ``range(n)``, each shard is in increasing order, and
    batching a shard with ``batch_size`` reproduces exactly the global batches it holds (only
    the global last batch may be short, and it is the last of its shard), so each image is
    padded together with the same neighbours as in a one-process run. Deterministic."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world size {world_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n_batches = -(-n // batch_size)
    if strategy == "contiguous":
        base, extra = divmod(n_batches, world_size)
        start = rank * base + min(rank, extra)
        batches: Sequence[int] = range(start, start + base + (1 if rank < extra else 0))
    elif strategy == "strided":
        batches = range(rank, n_batches, world_size)
    else:
        raise ValueError(f"strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    return [i for b in batches for i in range(b * batch_size, min(n, (b + 1) * batch_size))]


# -- predictions on the wire ------------------------------------------------------------------------
_FIELDS = ("boxes", "scores", "labels", "keypoints")


def pack_predictions(items: Sequence[tuple[int, Prediction]], seconds: float = 0.0) -> bytes:
    """``(key, Prediction)`` pairs as safetensors bytes: values, dtypes and shapes come back
    exactly (bf16 included), and nothing is pickled. Each field is concatenated over the items,
    one run per dtype and trailing shape (``<field>.<run>.values``, with the items it holds and
    their row counts), because one tensor per image makes the header the bottleneck."""
    import torch
    from safetensors.torch import save

    tensors = {
        "keys": torch.tensor([int(k) for k, _ in items], dtype=torch.int64),
        "seconds": torch.tensor([float(seconds)], dtype=torch.float64),
    }
    for name in _FIELDS:
        columns = [getattr(p, name).detach().cpu() for _, p in items]
        runs: dict[tuple[torch.dtype, tuple[int, ...]], list[int]] = {}
        for i, t in enumerate(columns):
            runs.setdefault((t.dtype, tuple(t.shape[1:])), []).append(i)
        for r, members in enumerate(runs.values()):
            tensors[f"{name}.{r}.values"] = torch.cat([columns[i] for i in members]).contiguous()
            tensors[f"{name}.{r}.members"] = torch.tensor(members, dtype=torch.int64)
            tensors[f"{name}.{r}.counts"] = torch.tensor(
                [columns[i].shape[0] for i in members], dtype=torch.int64
            )
    return save(tensors)


def unpack_predictions(data: bytes) -> tuple[list[tuple[int, Prediction]], float]:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    from .adapters.base import Prediction

    try:
        tensors = load(data)
        keys = tensors["keys"].tolist()
        seconds = float(tensors["seconds"][0])
        columns: dict[str, list[Any]] = {name: [None] * len(keys) for name in _FIELDS}
        for name in _FIELDS:
            r = 0
            while f"{name}.{r}.values" in tensors:
                counts = tensors[f"{name}.{r}.counts"].tolist()
                parts = torch.split(tensors[f"{name}.{r}.values"], counts)
                for i, part in zip(tensors[f"{name}.{r}.members"].tolist(), parts, strict=True):
                    columns[name][i] = part
                r += 1
        if any(t is None for col in columns.values() for t in col):
            raise KeyError("a prediction field is missing")
    except (SafetensorError, KeyError, IndexError, ValueError, RuntimeError) as exc:
        raise DistributedError(f"a rank sent predictions in an unknown format ({exc})") from None
    out = [(int(k), Prediction(*(columns[n][i] for n in _FIELDS))) for i, k in enumerate(keys)]
    return out, seconds


def merge_shards(payloads: Sequence[bytes], order: Sequence[int]) -> tuple[list[Prediction], float]:
    """The ranks' packed shards as one list in ``order`` (keys); each key exactly once. Returns
    the predictions and the slowest rank's seconds."""
    by_key: dict[int, Prediction] = {}
    seconds = 0.0
    for rank, data in enumerate(payloads):
        items, s = unpack_predictions(data)
        seconds = max(seconds, s)
        for key, p in items:
            if key in by_key:
                raise DistributedError(f"rank {rank} sent image {key}, which another rank sent")
            by_key[key] = p
    missing = [k for k in order if k not in by_key]
    if missing or len(by_key) != len(order):
        raise DistributedError(
            f"the ranks' shards do not cover the evaluation set (missing {missing[:5]}, "
            f"{len(by_key)} received for {len(order)} images)"
        )
    return [by_key[k] for k in order], seconds


def predict_sharded(
    group: Group,
    get_model: Callable[[], Any],
    dataset: CocoKeypointDataset,
    batch_size: int = 1,
    num_workers: int | None = None,
    progress: Callable[[int], Any] | None = None,
    tag: str = "predict",
) -> PredictionSet:
    """``predictions.predict_dataset`` over the whole set, each rank predicting its shard of
    whole batches; every rank returns the full set in the dataset's image order."""
    from .predictions import PredictionSet, predict_dataset

    if not group.enabled:
        return predict_dataset(get_model(), dataset, batch_size, num_workers, progress)

    def local() -> bytes:
        indices = group.shard(len(dataset), batch_size)
        if not indices:
            return pack_predictions([])
        ps = predict_dataset(get_model(), dataset.subset(indices), batch_size, num_workers,
                             progress)  # fmt: skip
        return pack_predictions(list(zip(ps.image_ids, ps.predictions, strict=True)), ps.seconds)

    payloads = group.gather_outcomes(tag, local)
    preds, seconds = merge_shards(payloads, dataset.image_ids)
    return PredictionSet(list(dataset.image_ids), preds, seconds=seconds)


# -- the prediction cache under several processes ---------------------------------------------------
def cache_lock(path: Path | None):
    """An exclusive lock beside a cache entry (``<entry>.lock``): one process computes and
    writes it while the others wait, then read it. A no-op without a path."""
    if path is None:
        return contextlib.nullcontext()
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


def cached_predictions(
    group: Group,
    path: Path | None,
    key: str,
    image_ids: Sequence[int],
    compute: Callable[[], PredictionSet],
    read: bool = True,
) -> PredictionSet:
    """The cache entry at ``path`` when valid (and ``read``), else ``compute()`` (a collective
    under torchrun) written to ``path``. Only rank 0 touches the file; under a lock, so that
    xdist workers (and concurrent runs) compute an entry once. A hit is broadcast from rank 0
    to the other ranks, so nodes need not share the cache folder."""
    from . import predictions as P

    lock = cache_lock(path if read and group.is_main else None)
    with lock:
        cached = None
        if group.is_main and read and path is not None:
            cached = P.load(path, key)
            if cached is not None and list(cached.image_ids) != list(image_ids):
                cached = None
        if group.enabled:
            group.agree(f"cache {key[:12]}")
            if group.broadcast_object(cached is not None):
                data = pack_predictions(list(zip(cached.image_ids, cached.predictions,
                                                 strict=True))) if group.is_main else None  # fmt: skip
                items, _ = unpack_predictions(group.broadcast_bytes(data))
                cached = P.PredictionSet([k for k, _ in items], [p for _, p in items],
                                         from_cache=True, key=key)  # fmt: skip
        if cached is not None:
            return cached
        ps = compute()
        ps.key = key
        if path is not None and group.is_main:
            P.save(path, ps)
    return ps


# -- the corruption sweep -----------------------------------------------------------------------------
class _RecordingImages:
    """The sweep's images, remembering which indices ``corruption_eval.run`` asked for last."""

    def __init__(self, images: Sequence[Any]) -> None:
        self.images = images
        self.requested: list[int] = []

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Any:
        self.requested.append(int(i))
        return self.images[i]


class _ShardModel:
    """The model, predicting only the batches of this rank's shard (empty placeholders for the
    others, replaced by the owners' predictions when the sweep's evaluation gathers them)."""

    def __init__(self, sweep: ShardedSweep, inner: Any) -> None:
        self._sweep = sweep
        self.inner = inner

    def predict(self, images):
        from .adapters.base import Prediction

        sweep = self._sweep
        idx = sweep.images.requested[-len(images) :]
        sweep.images.requested.clear()
        mine = [i in sweep.indices for i in idx]
        if len(idx) == len(images) and all(mine):
            if sweep.error is not None:
                return [Prediction.empty(sweep.num_keypoints) for _ in images]
            try:
                return self.inner.predict(images)
            except Exception as exc:  # noqa: BLE001 - reported to every rank at the evaluation
                sweep.error = exc
                return [Prediction.empty(sweep.num_keypoints) for _ in images]
        if len(idx) == len(images) and not any(mine):
            return [Prediction.empty(sweep.num_keypoints) for _ in images]
        sweep.error = DistributedError(
            f"the corruption sweep batched images {idx}, across shards: its batches no longer "
            "match the shards (batch size changed?)"
        )
        return [Prediction.empty(sweep.num_keypoints) for _ in images]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ShardedSweep:
    """``robustness.corruption_eval.run`` across ranks without changing it: pass ``images``,
    ``model`` and ``evaluate`` of this object instead of the originals.

    ``run`` goes through every batch on every rank (so the corrupted images, whose noise is
    keyed by the image's index, are exactly those of a one-process run); the model predicts
    only this rank's shard (whole batches of ``batch_size``); at each evaluation the ranks
    exchange their predictions, rank 0 evaluates the merged list once and broadcasts the
    metrics. What is not shared out: applying the corruption, which every rank does for every
    image (cheap next to inference on a GPU; see ``benchmarks/distributed.py``)."""

    def __init__(self, group: Group, model: Any, images: Sequence[Any], evaluate: Callable,
                 batch_size: int, num_keypoints: int | None = None) -> None:  # fmt: skip
        self.group = group
        self.indices = frozenset(group.shard(len(images), batch_size))
        self.images = _RecordingImages(images)
        self.model = _ShardModel(self, model)
        self.num_keypoints = int(
            num_keypoints if num_keypoints is not None else getattr(model, "num_keypoints", 0)
        )
        self._evaluate = evaluate
        self.error: BaseException | None = None
        self._round = 0

    def evaluate(self, preds: Sequence[Prediction]) -> Mapping[str, Any]:
        self._round += 1
        n = len(self.images)

        def local() -> bytes:
            if self.error is not None:
                raise self.error
            if len(preds) != n:
                raise DistributedError(f"the sweep returned {len(preds)} predictions for {n}")
            return pack_predictions([(i, preds[i]) for i in sorted(self.indices)])

        payloads = self.group.gather_outcomes(f"corruption sweep {self._round}", local)
        merged, _ = merge_shards(payloads, list(range(n)))
        return self.group.on_main(
            f"corruption metrics {self._round}", lambda: self._evaluate(merged)
        )


# -- pytest-xdist ---------------------------------------------------------------------------------------
WORKER_OUTPUT_KEY = "kpmodel"
XDIST_REASON = (
    "speed tests do not run under pytest-xdist: parallel workers share the CPU/GPU and distort "
    "every timing; run them with -p no:xdist or -n 0"
)


def xdist_reason(config: Any = None) -> str | None:
    """The skip reason for speed tests when running under pytest-xdist, else None.

    ``config`` is pytest's config (or anything with ``workerinput`` / ``option.numprocesses``
    / ``option.dist``); the ``PYTEST_XDIST_WORKER`` environment variable is checked as well.
    """
    if xdist_worker() is not None:
        return XDIST_REASON
    if config is None:
        return None
    if getattr(config, "workerinput", None) is not None:
        return XDIST_REASON
    option = getattr(config, "option", None)
    n = getattr(option, "numprocesses", None)
    dist = getattr(option, "dist", "no")
    if (n not in (None, 0, "0")) or (dist not in (None, "no")):
        return XDIST_REASON
    return None


def worker_output(session) -> str:
    """What an xdist worker sends its controller: its checks, report sections and warnings
    (JSON: execnet carries only plain data)."""
    from .report.json_report import _security_section

    with contextlib.suppress(Exception):
        _security_section(session)
    return json.dumps(
        {"checks": session.checks, "sections": session.sections, "warnings": session.warnings},
        default=str,
    )


def merge_worker_output(session, text: str) -> None:
    """Add a worker's output to the controller's session, deterministically whatever the order
    the workers finish in: checks sorted by test id, dicts merged key by key (the first value
    wins for a scalar: every worker computes the same metrics), lists extended."""
    data = json.loads(text)
    session.checks.extend(data.get("checks", []))
    session.checks.sort(key=lambda c: (str(c.get("nodeid", "")), str(c.get("marker", ""))))
    _merge_into(session.sections, data.get("sections", {}))
    for w in data.get("warnings", []):
        if w not in session.warnings:
            session.warnings.append(w)


def _merge_into(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for k, v in extra.items():
        if k not in target:
            target[k] = v
        elif isinstance(target[k], dict) and isinstance(v, Mapping):
            _merge_into(target[k], v)
        elif isinstance(target[k], list) and isinstance(v, list):
            target[k].extend(x for x in v if x not in target[k])
