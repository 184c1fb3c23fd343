"""The argument checks of the allow-listed callables torch.save pickles (tensor and parameter
rebuilds with storage bounds, OrderedDict, Counter, set, Size, Namespace). A check returns
the call's symbolic result or raises :class:`.errors.BadArgs`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..allowlist import QUANTIZED_STORAGES
from .errors import BadArgs
from .values import Container, Global, Obj, StorageRef, is_int, typename

if TYPE_CHECKING:
    from .machine import VM


def _int_tuple(v: Any, what: str) -> list[int]:
    if not (isinstance(v, Container) and v.kind == "tuple"):
        raise BadArgs(f"{what} is a {typename(v)}, not a tuple of ints")
    if not all(is_int(x) for x in v.items):
        raise BadArgs(f"{what} holds non-integers")
    return v.items


def _empty_hooks(v: Any) -> None:
    if not (isinstance(v, Container) and v.kind == "ordereddict") or v.items:
        raise BadArgs("backward hooks must be an empty OrderedDict")


def _check_bounds(
    vm: VM, storage: StorageRef, itemsize: int, offset: Any, size: Any, stride: Any
) -> None:
    if not is_int(offset):
        raise BadArgs(f"storage offset is a {typename(offset)}")
    sizes = _int_tuple(size, "size")
    strides = _int_tuple(stride, "stride")
    if len(sizes) != len(strides):
        raise BadArgs(f"size {tuple(sizes)} and stride {tuple(strides)} differ in length")
    if offset < 0 or any(s < 0 for s in sizes) or any(s < 0 for s in strides):
        raise BadArgs("negative offset, size or stride")
    if itemsize <= 0 or storage.itemsize <= 0:
        raise BadArgs("unknown element size")
    elements = storage.elements * storage.itemsize // itemsize
    numel = 1
    for s in sizes:
        numel *= s
    if numel >= 1 << 63:
        raise BadArgs(f"size {tuple(sizes)} overflows int64")
    if numel == 0:
        need = offset
    else:
        need = offset + sum((s - 1) * st for s, st in zip(sizes, strides, strict=True)) + 1
    if need > elements:
        vm.col.add(
            "security.tensor",
            "tensor-bounds",
            f"tensor (offset {offset}, size {tuple(sizes)}, stride {tuple(strides)}) reaches "
            f"element {need} of storage {storage.key!r}, which has {elements}",
            member=vm.member,
            offset=vm.op_off - vm.base,
            opcode=vm.op_name,
            name=storage.key,
        )


def _storage_arg(v: Any) -> StorageRef:
    if not isinstance(v, StorageRef):
        raise BadArgs(f"storage argument is a {typename(v)}, not a persistent-id storage")
    return v


def _tensor(vm: VM, kind: str = "tensor") -> Obj:
    vm.result.tensors += 1
    return Obj(kind)


def _metadata(v: Any) -> None:
    if not (isinstance(v, Container) and v.kind == "dict"):
        raise BadArgs("tensor metadata must be a dict")
    for k, x in zip(v.items[::2], v.items[1::2], strict=True):
        if type(k) is not str or type(x) not in (bool, int, float, str):
            raise BadArgs("tensor metadata must map str to plain values")


def _c_rebuild_tensor_v2(vm: VM, a: list[Any]) -> Any:
    if len(a) not in (6, 7):
        raise BadArgs(f"takes 6 or 7 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    if (
        st.type_name.split(".")[-1] in QUANTIZED_STORAGES
        or st.type_name == "torch.storage.UntypedStorage"
    ):
        raise BadArgs(f"{st.type_name} storage in a plain tensor")
    if type(a[4]) is not bool:
        raise BadArgs("requires_grad must be a bool")
    _empty_hooks(a[5])
    if len(a) == 7:
        _metadata(a[6])
    _check_bounds(vm, st, st.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_rebuild_tensor(vm: VM, a: list[Any]) -> Any:
    if len(a) != 4:
        raise BadArgs(f"takes 4 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    _check_bounds(vm, st, st.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_rebuild_tensor_v3(vm: VM, a: list[Any]) -> Any:
    if len(a) not in (7, 8):
        raise BadArgs(f"takes 7 or 8 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    if st.type_name != "torch.storage.UntypedStorage":
        raise BadArgs(f"expects an UntypedStorage, got {st.type_name}")
    if type(a[4]) is not bool:
        raise BadArgs("requires_grad must be a bool")
    _empty_hooks(a[5])
    dt = a[6]
    if not (isinstance(dt, Global) and dt.entry is not None and dt.entry.role == "dtype"):
        raise BadArgs(f"dtype argument is a {typename(dt)}")
    if len(a) == 8 and a[7] is not None:
        _metadata(a[7])
    _check_bounds(vm, st, dt.entry.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_rebuild_parameter(vm: VM, a: list[Any]) -> Any:
    if len(a) != 3:
        raise BadArgs(f"takes 3 arguments, got {len(a)}")
    if not (isinstance(a[0], Obj) and a[0].kind == "tensor"):
        raise BadArgs(f"data is a {typename(a[0])}, not a tensor")
    if type(a[1]) is not bool:
        raise BadArgs("requires_grad must be a bool")
    _empty_hooks(a[2])
    return Obj("parameter")


def _c_rebuild_parameter_with_state(vm: VM, a: list[Any]) -> Any:
    if len(a) != 4:
        raise BadArgs(f"takes 4 arguments, got {len(a)}")
    _c_rebuild_parameter(vm, a[:3])
    st = a[3]
    if not (isinstance(st, Container) and st.kind in ("dict", "ordereddict")):
        raise BadArgs("state must be a dict")
    for k in st.items[::2]:
        if type(k) is not str or (k.startswith("__") and k.endswith("__")):
            raise BadArgs(f"state sets attribute {k!r}")
    return Obj("parameter")


def _c_rebuild_qtensor(vm: VM, a: list[Any]) -> Any:
    if len(a) != 7:
        raise BadArgs(f"takes 7 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    if st.type_name.split(".")[-1] not in QUANTIZED_STORAGES:
        raise BadArgs(f"expects a quantized storage, got {st.type_name}")
    q = a[4]
    if not (isinstance(q, Container) and q.kind == "tuple" and q.items):
        raise BadArgs("quantizer parameters must be a tuple")
    scheme = q.items[0]
    if not (
        isinstance(scheme, Global) and scheme.entry is not None and scheme.entry.role == "qscheme"
    ):
        raise BadArgs(f"quantization scheme is a {typename(scheme)}")
    rest = q.items[1:]
    if scheme.name in ("per_tensor_affine", "per_tensor_symmetric"):
        if len(rest) != 2 or type(rest[0]) is not float or not is_int(rest[1]):
            raise BadArgs("per-tensor parameters must be (scheme, float scale, int zero_point)")
    else:
        if (
            len(rest) != 3
            or not all(isinstance(x, Obj) and x.kind == "tensor" for x in rest[:2])
            or not is_int(rest[2])
        ):
            raise BadArgs("per-channel parameters must be (scheme, scales, zero_points, axis)")
    if type(a[5]) is not bool:
        raise BadArgs("requires_grad must be a bool")
    _empty_hooks(a[6])
    _check_bounds(vm, st, st.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_ordereddict(vm: VM, a: list[Any]) -> Any:
    if a:
        raise BadArgs("torch.save creates OrderedDict() without arguments")
    return Container("ordereddict", [], 1)


def _c_counter(vm: VM, a: list[Any]) -> Any:
    if not a:
        return Container("dict", [], 1)
    d = a[0]
    if len(a) != 1 or not (isinstance(d, Container) and d.kind == "dict"):
        raise BadArgs("expects a single dict argument")
    if not all(is_int(x) for x in d.items):
        raise BadArgs("Counter keys and counts must be ints (MultiStepLR milestones)")
    return Container("dict", list(d.items), 2)


def _c_set(vm: VM, a: list[Any]) -> Any:
    # protocol 2 pickles a set as set([items]); nn.Module keeps _non_persistent_buffers_set
    if not a:
        return Container("set", [], 1)
    items = a[0]
    if len(a) != 1 or not (isinstance(items, Container) and items.kind == "list"):
        raise BadArgs("expects a single list argument")
    if not all(type(x) in (str, int) for x in items.items):
        raise BadArgs("set items must be str or int")
    return Container("set", list(items.items), 2)


def _c_size(vm: VM, a: list[Any]) -> Any:
    # torch.Size((d0, d1, ...)): a cached feature-map shape in Ultralytics' detection heads
    dims = a[0] if len(a) == 1 else None
    if not (isinstance(dims, Container) and dims.kind == "tuple"):
        raise BadArgs("expects a single tuple of dimensions")
    if len(dims.items) > 64 or not all(is_int(d) and 0 <= d < 1 << 62 for d in dims.items):
        raise BadArgs("dimensions must be at most 64 non-negative ints")
    return Container("tuple", list(dims.items), 2)


def _c_namespace(vm: VM, a: list[Any]) -> Any:
    if a:
        raise BadArgs("Namespace is created without arguments and filled by BUILD")
    return Obj("namespace")


CALL_CHECKS: dict[str, Callable[[VM, list[Any]], Any]] = {
    "torch._utils._rebuild_tensor_v2": _c_rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _c_rebuild_tensor_v3,
    "torch._utils._rebuild_tensor": _c_rebuild_tensor,
    "torch._utils._rebuild_parameter": _c_rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _c_rebuild_parameter_with_state,
    "torch._utils._rebuild_qtensor": _c_rebuild_qtensor,
    "collections.OrderedDict": _c_ordereddict,
    "collections.Counter": _c_counter,
    "argparse.Namespace": _c_namespace,
    "builtins.set": _c_set,  # listed only by opt-in profiles (allowlist.PROFILES)
    "torch.Size": _c_size,  # listed only by opt-in profiles
}
