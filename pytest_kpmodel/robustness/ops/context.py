"""What a kernel is given besides its batch: one random stream per image (``Rng``, seeded by
:func:`image_seed` from the perturbation's seed, the image's index and the kind, so a batch
equals its images processed one by one) and the people's boxes (``Ctx``).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def image_seed(seed: int, index: int, salt: str) -> int:
    """A 63-bit seed for image ``index`` of a perturbation with ``seed`` (stable across runs)."""
    h = _splitmix64(seed & _MASK64)
    h = _splitmix64(h ^ (index & _MASK64))
    for ch in salt.encode():
        h = _splitmix64(h ^ ch)
    return h >> 1


class Rng:
    """One generator per image; every draw returns a ``[B, *shape]`` tensor."""

    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self.device = device
        self.gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    # Each image's draws are written straight into its slice of the batch and scaled in place
    # (the same values as stacking torch.randn / torch.rand, without the copies).
    def normal(self, shape: Sequence[int], mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        out = torch.empty((len(self.gens), *shape), device=self.device)
        for o, g in zip(out, self.gens, strict=True):
            o.normal_(generator=g)
        return out.mul_(std).add_(mean) if (mean, std) != (0.0, 1.0) else out

    def uniform(
        self, shape: Sequence[int], low: float = 0.0, high: float = 1.0,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:  # fmt: skip
        out = torch.empty((len(self.gens), *shape), device=self.device, dtype=dtype)
        for o, g in zip(out, self.gens, strict=True):
            o.uniform_(generator=g)
        return out.mul_(high - low).add_(low) if (low, high) != (0.0, 1.0) else out

    def randint(self, low: int, high: int, shape: Sequence[int]) -> torch.Tensor:
        return torch.stack(
            [
                torch.randint(low, high, tuple(shape), generator=g, device=self.device)
                for g in self.gens
            ]
        )

    def codes(self, n: int, shape: Sequence[int], dtype: torch.dtype = torch.int64) -> torch.Tensor:
        """``[B, *shape]`` integers (``dtype``) uniform in ``[0, n)``. For ``n`` dividing 256, from
        random bytes (one 64-bit draw makes 8 of them: a quarter of the generator's work of
        ``randint``), else ``randint``; the same values whatever the dtype."""
        if 256 % n:
            return self.randint(0, n, shape).to(dtype)
        count = math.prod(shape)
        words = (count + 7) // 8
        out = torch.empty((len(self.gens), *shape), dtype=dtype, device=self.device)
        for o, g in zip(out, self.gens, strict=True):
            bits = torch.randint(
                -(2**63), 2**63 - 1, (words,), generator=g, device=self.device, dtype=torch.int64
            )
            o.view(-1).copy_(bits.view(torch.uint8)[:count])
        return out.bitwise_and_(n - 1) if n < 256 else out  # n is a power of 2

    def poisson(self, rates: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [torch.poisson(r, generator=g) for r, g in zip(rates, self.gens, strict=True)]
        )


@dataclass
class Ctx:
    """What a kernel may need besides the batch: randomness and the people in each image."""

    seeds: list[int]
    device: torch.device
    boxes: list[torch.Tensor | None] | None = None
    _rng: Rng | None = None

    @property
    def rng(self) -> Rng:
        if self._rng is None:
            self._rng = Rng(self.seeds, self.device)
        return self._rng


def kernel_angles(ctx: Ctx, n: int, angle: float | None, low: float, high: float) -> torch.Tensor:
    """One angle per image: ``angle`` for all, or drawn per image in ``[low, high)`` when None."""
    if angle is None:
        return ctx.rng.uniform((), low, high)
    return torch.full((n,), float(angle), device=ctx.device)


# (batch [B, C, H, W], params, context) -> batch, or (batch, AffineTransform) for geometric kinds
Kernel = Callable[[torch.Tensor, dict[str, Any], Ctx], Any]


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    return 0


def _group(key: Hashable) -> Hashable:
    return key[0] if isinstance(key, tuple) and key else key


class ByteLRU:
    """Tensors computed from the per-image seeds alone (not from a severity), kept for the next
    severity of a sweep: the sweep applies one kind at severities 1-5 to the same images with
    the same seeds, so such a tensor is made once instead of five times. Least recently used
    entries go first once ``max_bytes`` is exceeded; a tensor larger than that is not kept.

    ``put``/``peek``/``pop`` keep work that one severity hands to the next (zoom blur's partial
    sums): a value is a tensor or a tuple holding tensors, and ``put`` makes room only by
    evicting other kinds' entries (the first element of a tuple key names the kind), so a sweep
    over more images than fit keeps its first images' hand-overs instead of evicting each one
    before it is used."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.entries: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = compute()
        size = _nbytes(value)
        if size <= self.max_bytes:
            self.entries[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self.entries.popitem(last=False)
                self.bytes -= _nbytes(old)
        return value

    def peek(self, key: Hashable) -> Any:
        """The entry or None, without computing anything."""
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        return None

    def pop(self, key: Hashable) -> Any:
        value = self.entries.pop(key, None)
        if value is not None:
            self.bytes -= _nbytes(value)
        return value

    def room(self, group: Hashable, size: int) -> bool:
        """Whether ``size`` more bytes of ``group`` fit once other groups' entries are evicted."""
        same = sum(_nbytes(v) for k, v in self.entries.items() if _group(k) == group)
        return same + size <= self.max_bytes

    def put(self, key: Hashable, value: Any) -> bool:
        """Keep ``value`` (replacing ``key``'s entry), evicting only other groups' entries, least
        recently used first; False (nothing kept) when that does not make room."""
        self.pop(key)
        size = _nbytes(value)
        group = _group(key)
        if not self.room(group, size):
            return False
        for old_key in [k for k in self.entries if _group(k) != group]:
            if self.bytes + size <= self.max_bytes:
                break
            self.pop(old_key)
        self.entries[key] = value
        self.bytes += size
        return True

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


def image_memo(
    kind: str, ctx: Ctx, x: torch.Tensor, name: Hashable, compute: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """A tensor computed from the batch ``x`` itself (not only from the seeds), kept in
    ``SEED_MEMO`` for the next severities of a sweep, which apply ``kind`` to the same images
    with the same seeds: keyed by the seeds, used only while a copy of ``x`` kept with it is
    equal to the batch (other images under the same seeds drop it). Callers must not modify
    the returned tensor."""
    base = memo_base(kind, ctx, x)
    seen = memo_matches(base, x)
    if seen:
        hit = SEED_MEMO.peek((*base, name))
        if hit is not None:
            return hit
    value = compute()
    if seen or SEED_MEMO.put((*base, "input"), x.clone()):
        SEED_MEMO.put((*base, name), value)
    return value


def memo_base(kind: str, ctx: Ctx, x: torch.Tensor) -> tuple[Hashable, ...]:
    """The ``SEED_MEMO`` key prefix of what ``kind`` keeps from the batch ``x`` itself."""
    return (kind, tuple(ctx.seeds), tuple(x.shape), str(x.device))


def memo_matches(base: tuple[Hashable, ...], x: torch.Tensor) -> bool:
    """Whether the entries under ``base`` were made from this very batch (the copy kept as
    ``(*base, "input")`` equals ``x``); when not, they are stale (other images under the same
    seeds) and are dropped."""
    seen = SEED_MEMO.peek((*base, "input"))
    if seen is not None and torch.equal(seen, x):
        return True
    for key in [k for k in SEED_MEMO.entries if k[: len(base)] == base]:
        SEED_MEMO.pop(key)
    return False


# The textures of a sweep's images (frost): 50 images of 640x480 are 184 MB.
SEED_MEMO = ByteLRU(256 * 2**20)


# Work buffers kept per thread (see :func:`scratch`), and what they may hold in all.
_WORK = threading.local()
SCRATCH_MAX_BYTES = 160 * 2**20  # e.g. ten 4-image batches of 640x480


def scratch(
    name: str, shape: Sequence[int], dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:  # fmt: skip
    """A work buffer of ``shape`` (uninitialised), the same one for every call with ``name`` on
    this thread while the shape stays: on a CPU, a fresh batch-sized buffer costs more in page
    faults than the arithmetic done in it (freed large buffers go back to the system), and a
    sweep's calls all have the same shape. A one-dimensional buffer serves any request up to
    its length (the start of it), so flat buffers serve the severities' sizes. Only for
    temporaries: a kernel never returns one (or
    a view of one), and two live temporaries never share a ``name``. Off the CPU, and beyond
    ``SCRATCH_MAX_BYTES`` per thread, a fresh tensor."""
    shape = tuple(shape)
    if torch.device(device).type != "cpu":
        return torch.empty(shape, dtype=dtype, device=device)
    bufs: dict[str, torch.Tensor] | None = getattr(_WORK, "bufs", None)
    if bufs is None:
        bufs = _WORK.bufs = {}
    buf = bufs.get(name)
    if buf is not None and tuple(buf.shape) == shape and buf.dtype == dtype:
        return buf
    flat = buf is not None and len(shape) == buf.ndim == 1 and buf.dtype == dtype
    if flat and buf.numel() >= shape[0]:  # a flat buffer serves every smaller request
        return buf[: shape[0]]
    bufs.pop(name, None)
    size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if _kept_bytes() + size > SCRATCH_MAX_BYTES:
        return torch.empty(shape, dtype=dtype)
    buf = bufs[name] = torch.empty(shape, dtype=dtype)
    return buf


# The storage's reference count (a torch-internal name; absent -> results are never reused).
_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)
RESULTS_KEPT = 2  # result buffers kept per thread and shape


def _refs(t: torch.Tensor) -> int:
    assert _USE_COUNT is not None
    return int(_USE_COUNT(t.untyped_storage()._cdata))


def work(
    slot: int, shape: Sequence[int], dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:  # fmt: skip
    """A kernel's temporary number ``slot`` (1, 2, ...): the start of one flat :func:`scratch`
    buffer per slot and dtype shared by all kernels (one kernel runs at a time on a thread), so
    the kept bytes grow with the number of slots, not of kernels. Helpers that kernels call
    keep buffers under their own names, never these."""
    n = math.prod(shape)
    return scratch(f"work{slot}.{dtype}", (n,), dtype, device).view(tuple(shape))


def result_like(x: torch.Tensor) -> torch.Tensor:
    """:func:`result_buffer` of ``x``'s shape, dtype and device, channels-last if ``x`` is (and
    has more than one channel)."""
    cl = x.ndim == 4 and x.shape[1] > 1 and not x.is_contiguous()
    if cl and x.is_contiguous(memory_format=torch.channels_last):
        b, c, h, w = x.shape
        return result_buffer((b, h, w, c), x.dtype, x.device).permute(0, 3, 1, 2)
    return result_buffer(x.shape, x.dtype, x.device)


def result_buffer(
    shape: Sequence[int], dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """A buffer for a kernel's result (uninitialised, contiguous). On the CPU, one that an
    earlier call returned is reused once nothing but this pool refers to its storage any more
    (every tensor and view of it handed out is gone, which the storage's reference count
    tells; a storage object held without any tensor is not seen): a sweep drops each result
    after inference, and a fresh batch-sized buffer costs more in page faults than most
    kernels' arithmetic. Safe for intermediates too (a held one is never handed out again)."""
    shape = tuple(shape)
    if torch.device(device).type != "cpu" or _USE_COUNT is None:
        return torch.empty(shape, dtype=dtype, device=device)
    kept: list[tuple[torch.Tensor, int]] | None = getattr(_WORK, "results", None)
    if kept is None:
        kept = _WORK.results = []
    same = [(b, n) for b, n in kept if tuple(b.shape) == shape and b.dtype == dtype]
    # Handed out as a view (a tensor of its own on the kept storage), so that every tensor
    # the caller holds, the handed one included, counts against the storage.
    for buf, alone in same:
        if _refs(buf) == alone:
            return buf.view(shape)
    buf = torch.empty(shape, dtype=dtype)
    size = buf.numel() * buf.element_size()
    if len(same) < RESULTS_KEPT:
        # room first from kept results of other shapes that nothing holds any more
        free = [e for e in kept if tuple(e[0].shape) != shape and _refs(e[0]) == e[1]]
        for entry in free:
            if _kept_bytes() + size <= SCRATCH_MAX_BYTES:
                break
            kept[:] = [e for e in kept if e[0] is not entry[0]]
        if _kept_bytes() + size <= SCRATCH_MAX_BYTES:
            kept.append((buf, _refs(buf)))
            return buf.view(shape)
    return buf


def release_work_buffers() -> None:
    """Drop this thread's kept work and result buffers (the end of a sweep: they hold its
    shapes, up to ``SCRATCH_MAX_BYTES``, that nothing else will ask for)."""
    _WORK.__dict__.clear()


def _kept_bytes() -> int:
    bufs = getattr(_WORK, "bufs", None) or {}
    results = getattr(_WORK, "results", None) or []
    return sum(_nbytes(b) for b in bufs.values()) + sum(_nbytes(b) for b, _ in results)
