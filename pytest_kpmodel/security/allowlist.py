"""The pickle allow-list: every global a weights file may import, with its role and reason.

This is an *allow*-list: anything not listed here is a finding. Each entry has a role that
limits how the pickle may use it:

``call``     may be the callable of REDUCE, with arguments checked by :mod:`.pickle_scan`
``class``    may be the class of NEWOBJ (no arguments), then filled by BUILD
``storage``  may only appear as the storage type inside a ``('storage', ...)`` persistent id
``dtype``    a torch dtype: the dtype argument of ``_rebuild_tensor_v3``, or a plain value
             (quantized packed parameters keep theirs); never called
``qscheme``  may only appear as the quantization scheme of ``_rebuild_qtensor``
``extra``    added by the caller (``extra_globals``); any use, reported as an info finding
``module``   an ``nn.Module`` class of an opt-in profile: NEWOBJ without arguments, then one
             BUILD with a str-keyed dict (the module's ``__dict__``); never called

How the list was made: by generating real files with torch 2.14 ``torch.save`` — state dicts
of torchvision models (``resnet18``, ``keypointrcnn_resnet50_fpn``), tensors of every dtype
(fp32/fp16/bf16/fp64/int8/uint8/int16/int32/int64/bool/complex64, float8, quint8/qint8
per-tensor and per-channel), views, shared storages, ``nn.Parameter``, training checkpoints
laid out like torchvision's reference scripts (``model``, ``optimizer`` (SGD/AdamW),
``lr_scheduler`` (MultiStepLR/StepLR/cosine), ``epoch``, ``args``), both the zip and the
``_use_new_zipfile_serialization=False`` legacy formats — and listing the globals their
pickles import (tests/security/test_real_files.py re-checks this on every run).

Deliberately NOT listed (torch's own ``weights_only`` list has some of them; add them with
``extra_globals`` when a file really needs them, which is then reported):

* ``torch.serialization._get_layout``, ``torch._utils._rebuild_sparse_tensor``: only sparse
  tensors; detection state dicts are dense (sparse tensors also skip invariant checks).
* ``torch._tensor._rebuild_from_type_v2``: tensor subclasses / tensors with Python attributes;
  its ``new_type`` argument is an arbitrary class.
* ``torch._utils._rebuild_wrapper_subclass``, ``_rebuild_nested_tensor``,
  ``_rebuild_meta_tensor_no_storage``, ``_rebuild_device_tensor_from_numpy``,
  ``_rebuild_device_tensor_from_cpu_tensor``: not emitted for CPU/CUDA dense tensors.
* ``torch.Size``, ``torch.device``, ``builtins.set``, ``builtins.bytearray``,
  ``builtins.complex``, ``_codecs.encode`` (how protocol 2 pickles ``bytes``): never in a
  state dict or a torchvision reference checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Role = str  # "call" | "class" | "storage" | "dtype" | "qscheme" | "extra"


@dataclass(frozen=True)
class Allowed:
    module: str
    name: str
    role: Role
    why: str
    itemsize: int = 0  # element size in bytes (storages and dtypes)

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"


_CALLS: list[tuple[str, str, str, str]] = [
    (
        "collections",
        "OrderedDict",
        "call",
        "Module.state_dict() returns an OrderedDict (pickled as OrderedDict() + SETITEMS + "
        "BUILD {'_metadata': ...}); every tensor's empty backward-hooks argument is one too.",
    ),
    (
        "collections",
        "Counter",
        "call",
        "torch.optim.lr_scheduler.MultiStepLR keeps its milestones in a Counter; torchvision's "
        "detection reference script uses MultiStepLR and saves lr_scheduler.state_dict() in "
        "every checkpoint. Only Counter() or Counter({int: int}) is accepted.",
    ),
    (
        "torch._utils",
        "_rebuild_tensor_v2",
        "call",
        "How torch.save pickles every dense tensor with a typed storage (fp32/fp16/bf16/int8/"
        "...); arguments (storage, offset, size, stride, requires_grad, hooks) are bounds-checked.",
    ),
    (
        "torch._utils",
        "_rebuild_tensor_v3",
        "call",
        "Dense tensors whose dtype has no typed storage class (float8_*, uint16/32/64, bits*, "
        "complex32): the storage is UntypedStorage and the dtype is passed explicitly.",
    ),
    (
        "torch._utils",
        "_rebuild_tensor",
        "call",
        "Tensors in state dicts written by torch < 0.4 (legacy format, still found in old "
        "model zoos); arguments (storage, offset, size, stride) are bounds-checked.",
    ),
    (
        "torch._utils",
        "_rebuild_parameter",
        "call",
        "nn.Parameter saved as such (state_dict(keep_vars=True), optimizer param lists).",
    ),
    (
        "torch._utils",
        "_rebuild_parameter_with_state",
        "call",
        "nn.Parameter that carries Python attributes; the state must be a str-keyed dict.",
    ),
    (
        "torch._utils",
        "_rebuild_qtensor",
        "call",
        "Quantized (int8) tensors, e.g. torchvision.models.quantization backbones; quantizer "
        "parameters must be (scheme, scale, zero_point) or (scheme, scales, zero_points, axis).",
    ),
    (
        "argparse",
        "Namespace",
        "class",
        "torchvision's reference train.py scripts save the parsed command line as "
        "checkpoint['args']; pickled as NEWOBJ Namespace() + BUILD {str: value}, i.e. "
        "object.__new__ and a __dict__ update - no code runs.",
    ),
]

# storage class -> element size; only valid as the storage type in a persistent id
_STORAGES: dict[str, int] = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "BFloat16Storage": 2,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt8Storage": 1,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}
QUANTIZED_STORAGES = frozenset(
    {"QInt8Storage", "QInt32Storage", "QUInt8Storage", "QUInt4x2Storage", "QUInt2x4Storage"}
)

# torch.<dtype> -> itemsize; only valid as the dtype argument of _rebuild_tensor_v3
_DTYPES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "complex128": 16,
    "complex64": 8,
    "complex32": 4,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "float8_e4m3fn": 1,
    "float8_e4m3fnuz": 1,
    "float8_e5m2": 1,
    "float8_e5m2fnuz": 1,
    "float8_e8m0fnu": 1,
    "float4_e2m1fn_x2": 1,
    "bits1x8": 1,
    "bits2x4": 1,
    "bits4x2": 1,
    "bits8": 1,
    "bits16": 2,
    **{f"uint{i}": 1 for i in range(1, 8)},
    **{f"int{i}": 1 for i in range(1, 8)},
    # quantized dtypes: the state dict of a quantized Linear holds its packed parameters'
    # dtype as a plain value (torchvision.models.quantization backbones)
    "qint8": 1,
    "quint8": 1,
    "qint32": 4,
    "quint4x2": 1,
    "quint2x4": 1,
}

_QSCHEMES = (
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
)


def _build_default() -> dict[tuple[str, str], Allowed]:
    out: dict[tuple[str, str], Allowed] = {}
    for module, name, role, why in _CALLS:
        out[(module, name)] = Allowed(module, name, role, why)
    for name, size in _STORAGES.items():
        out[("torch", name)] = Allowed(
            "torch",
            name,
            "storage",
            "Storage type named in a ('storage', type, key, location, numel) persistent id; "
            "never called; its element size checks the archive member's byte size.",
            size,
        )
    out[("torch.storage", "UntypedStorage")] = Allowed(
        "torch.storage",
        "UntypedStorage",
        "storage",
        "Storage type of _rebuild_tensor_v3 tensors (numel counts bytes).",
        1,
    )
    for name, size in _DTYPES.items():
        out[("torch", name)] = Allowed(
            "torch", name, "dtype", "dtype argument of _rebuild_tensor_v3; never called.", size
        )
    for name in _QSCHEMES:
        out[("torch", name)] = Allowed(
            "torch", name, "qscheme", "Quantization scheme of _rebuild_qtensor; never called."
        )
    return out


DEFAULT_ALLOWLIST: dict[tuple[str, str], Allowed] = _build_default()


def parse_global(spec: str | tuple[str, str]) -> tuple[str, str]:
    """``"module:qualname"``, ``"module.name"`` (split at the last dot) or ``(module, name)``."""
    if isinstance(spec, tuple):
        module, name = spec
    elif ":" in spec:
        module, _, name = spec.partition(":")
    else:
        module, _, name = spec.rpartition(".")
    module, name = str(module).strip(), str(name).strip()
    if not module or not name:
        raise ValueError(f"not a global name: {spec!r} (expected 'module:name' or 'module.name')")
    return module, name


# Opt-in profiles: reviewed lists for one family's checkpoints, chosen by name (card key
# ``[model] allowlist``, ``kp_security(allowlist=[...])``, ``kpmodel scan --allowlist``). Each
# value is ``"package.module:ATTRIBUTE"`` naming a sequence of ``Allowed`` entries; the module is
# imported only when the profile is used.
PROFILES: dict[str, str] = {
    "ultralytics": "pytest_kpmodel.adapters.ultralytics.allowlist:ENTRIES",
}


def profile_entries(name: str) -> tuple[Allowed, ...]:
    """The entries of the opt-in profile ``name`` (``ValueError`` naming the known ones)."""
    import importlib

    target = PROFILES.get(name)
    if target is None:
        raise ValueError(f"unknown allow-list {name!r}; known: {', '.join(sorted(PROFILES))}")
    module, _, attr = target.partition(":")
    return tuple(getattr(importlib.import_module(module), attr))


class Allowlist:
    """The default allow-list, the opt-in ``profiles`` and the caller's explicit extensions."""

    def __init__(
        self, extra_globals: Iterable[str | tuple[str, str]] = (), profiles: Iterable[str] = ()
    ) -> None:
        self.entries = dict(DEFAULT_ALLOWLIST)
        self.profiles = tuple(dict.fromkeys(profiles))
        for profile in self.profiles:
            for entry in profile_entries(profile):
                self.entries.setdefault((entry.module, entry.name), entry)
        self.extra: list[Allowed] = []
        for spec in extra_globals:
            module, name = parse_global(spec)
            if (module, name) in self.entries and self.entries[(module, name)].role != "extra":
                continue  # already allowed, with its stricter checks
            entry = Allowed(module, name, "extra", "added by the caller (extra_globals)")
            self.entries[(module, name)] = entry
            self.extra.append(entry)

    def lookup(self, module: str, name: str) -> Allowed | None:
        return self.entries.get((module, name))


def describe() -> list[dict[str, str]]:
    """The default allow-list as ``[{"name", "role", "why"}]`` (for docs and ``--json``)."""
    return [
        {"name": a.full, "role": a.role, "why": a.why}
        for a in DEFAULT_ALLOWLIST.values()
        if a.role in ("call", "class")
    ] + [
        {
            "name": "torch.<Type>Storage, torch.storage.UntypedStorage",
            "role": "storage",
            "why": "storage types in persistent ids",
        },
        {"name": "torch.<dtype>", "role": "dtype", "why": "dtype argument of _rebuild_tensor_v3"},
        {"name": "torch.per_*", "role": "qscheme", "why": "quantization schemes"},
    ]
