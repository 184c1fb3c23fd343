"""Opcodes that build or fill tuples, lists, dicts and sets, and BUILD: what CPython does when
they reach a built-in value, and the findings when they reach anything else (where CPython
would call a method of an object the stream built).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..report import UNSAFE, UNSUPPORTED
from .errors import Fatal
from .values import Blob, Container, Obj, Opaque, is_bytearray, is_plain, typename

if TYPE_CHECKING:
    from .machine import VM


def _h_empty_tuple(vm: VM) -> None:
    vm.stack.append(Container("tuple", [], 1))


def _h_tuple(vm: VM) -> None:
    items = vm.pop_mark()
    vm.stack.append(vm.container("tuple", items))


def _tuple_n(n: int) -> Callable[[VM], None]:
    def h(vm: VM) -> None:
        if len(vm.stack) < n:
            raise Fatal("underflow", "unpickling stack underflow")
        items = vm.stack[-n:]
        del vm.stack[-n:]
        vm.stack.append(vm.container("tuple", items))

    return h


def _h_empty_list(vm: VM) -> None:
    vm.stack.append(Container("list", [], 1))


def _h_list(vm: VM) -> None:
    items = vm.pop_mark()  # first: pop_mark() replaces vm.stack
    vm.stack.append(vm.container("list", items))


def _h_empty_dict(vm: VM) -> None:
    vm.stack.append(Container("dict", [], 1))


_UNHASHABLE = frozenset({"list", "dict", "set", "ordereddict"})


def _unhashable(k: Any) -> str | None:
    """The type that makes ``k`` unhashable for CPython (None when it is or may be hashable)."""
    if isinstance(k, Container):
        if k.kind in _UNHASHABLE:
            return k.kind
        if k.kind == "tuple":
            return next((u for u in map(_unhashable, k.items) if u), None)
        return None
    if isinstance(k, Blob) and k.mutable:
        return "bytearray"
    if isinstance(k, Obj) and k.kind == "namespace":  # Namespace defines __eq__: no __hash__
        return "Namespace"
    return None


def _check_key(vm: VM, k: Any) -> None:
    u = _unhashable(k)
    if u is not None:
        raise Fatal("unhashable", f"unhashable type: {u!r}")


def _pairs(vm: VM, items: list[Any], what: str) -> list[Any]:
    if len(items) % 2:
        raise Fatal("odd-items", f"odd number of items for {what}")
    for k in items[::2]:
        _check_key(vm, k)
    return items


def _h_dict(vm: VM) -> None:
    items = _pairs(vm, vm.pop_mark(), "DICT")  # first: pop_mark() replaces vm.stack
    vm.stack.append(vm.container("dict", items))


def _no_method(t: Any, what: str, method: str) -> Fatal:
    return Fatal("bad-target", f"{what} on a {typename(t)}, which has no {method}")


def _dict_target(vm: VM, target: Any, what: str, n: int) -> Container | None:
    """do_setitems: PyObject_SetItem on the object below the items, for each pair."""
    if isinstance(target, Container) and target.kind in ("dict", "ordereddict"):
        return target
    if isinstance(target, Opaque) or n == 0:
        return None
    if (isinstance(target, Container) and target.kind == "list") or is_bytearray(target):
        vm.finding(
            "builtin-mutation",
            f"{what} assigns items of a {typename(target)} (a built-in __setitem__; no code "
            "runs); torch.save never does",
        )
        return None
    if is_plain(target):
        raise _no_method(target, what, "__setitem__")
    vm.finding(
        "setitem-target",
        f"{what} on a {typename(target)} (CPython calls its __setitem__)",
    )
    return None


def _h_setitem(vm: VM) -> None:
    v = vm.pop()
    k = vm.pop()
    t = _dict_target(vm, vm.top(), "SETITEM", 1)
    if t is not None:
        _check_key(vm, k)
        vm.grow(t, [k, v])


def _h_setitems(vm: VM) -> None:
    items = vm.pop_mark()
    target = vm.top()  # underflow first, as in do_setitems
    if not items:
        return  # "nothing to do": no lookup, no call
    if len(items) % 2:
        raise Fatal("odd-items", "odd number of items for SETITEMS")
    t = _dict_target(vm, target, "SETITEMS", len(items))
    if t is not None:
        _pairs(vm, items, "SETITEMS")
        vm.grow(t, items)


def _list_target(vm: VM, target: Any, what: str) -> Container | None:
    """do_append: list.extend for a list; else the object's extend, or its append."""
    if isinstance(target, Container) and target.kind == "list":
        return target
    if isinstance(target, Opaque):
        return None
    if is_bytearray(target):
        vm.finding(
            "builtin-mutation",
            f"{what} on a bytearray (bytearray.extend; no code runs); torch.save never does",
        )
        return None
    if is_plain(target):
        raise _no_method(target, what, "extend or append attribute")
    vm.finding(
        "append-target",
        f"{what} on a {typename(target)} (CPython calls its extend/append attribute)",
    )
    return None


def _h_append(vm: VM) -> None:
    v = vm.pop()
    t = _list_target(vm, vm.top(), "APPEND")
    if t is not None:
        vm.grow(t, [v])


def _h_appends(vm: VM) -> None:
    items = vm.pop_mark()
    target = vm.top()
    if not items:
        # _pickle.c does nothing; pickle.py's _Unpickler still looks up and calls .extend([])
        is_list = isinstance(target, Container) and target.kind == "list"
        if not (is_list or isinstance(target, Opaque)):
            vm.finding(
                "append-target",
                f"APPENDS without items on a {typename(target)} (_pickle.c does nothing; "
                "pickle.py calls its extend)",
                verdict=UNSUPPORTED if is_plain(target) else UNSAFE,
            )
        return
    t = _list_target(vm, target, "APPENDS")
    if t is not None:
        vm.grow(t, items)


def _h_empty_set(vm: VM) -> None:
    vm.stack.append(Container("set", [], 1))


def _h_additems(vm: VM) -> None:
    items = vm.pop_mark()
    t = vm.top()  # underflow first, as in load_additems
    if not items:
        return  # "nothing to do"
    if isinstance(t, Container) and t.kind == "set":
        for k in items:
            _check_key(vm, k)
        vm.grow(t, items)
    elif isinstance(t, Opaque):
        return
    elif is_plain(t):  # frozenset, list, dict... (a bytearray has no add either)
        raise _no_method(t, "ADDITEMS", "add attribute")
    else:
        vm.finding("additems-target", f"ADDITEMS on a {typename(t)} (CPython calls its add)")


def _h_frozenset(vm: VM) -> None:
    items = vm.pop_mark()
    for k in items:
        _check_key(vm, k)
    vm.stack.append(vm.container("frozenset", items))


def _h_build(vm: VM) -> None:
    state = vm.pop()
    inst = vm.top()
    if isinstance(inst, Opaque) or isinstance(state, Opaque):
        return
    if vm.rules.build is not None and vm.rules.build(vm, inst, state):
        return
    if isinstance(inst, Obj) and inst.kind == "extra":
        return
    if is_plain(inst) and not (isinstance(inst, Container) and inst.kind == "ordereddict"):
        _build_builtin(inst, state)
        return
    ok_target = (isinstance(inst, Container) and inst.kind == "ordereddict") or (
        isinstance(inst, Obj) and inst.kind in ("namespace", "module") and not inst.built
    )
    if not ok_target:
        vm.finding(
            "build-target",
            f"BUILD on a {typename(inst)}; torch.save only BUILDs OrderedDicts and Namespaces "
            "(BUILD calls __setstate__ or sets attributes)",
        )
        return
    if not (isinstance(state, Container) and state.kind == "dict"):
        vm.finding("build-state", f"BUILD with a {typename(state)} state instead of a dict")
        return
    for k in state.items[::2]:
        if type(k) is not str or (k.startswith("__") and k.endswith("__")):
            vm.finding("build-state", f"BUILD sets attribute {k!r}")
            return
    if isinstance(inst, Obj):
        inst.built = True


def _build_builtin(inst: Any, state: Any) -> None:
    """load_build on a built-in value: no __setstate__, no __dict__, no settable attributes,
    so anything but an empty state raises - and nothing runs."""
    slots: Any = None
    if isinstance(state, Container) and state.kind == "tuple" and len(state.items) == 2:
        state, slots = state.items
    if state is not None:
        if not (isinstance(state, Container) and state.kind in ("dict", "ordereddict")):
            raise Fatal("bad-target", "BUILD: state is not a dictionary")
        raise _no_method(inst, "BUILD", "__dict__")
    if slots is not None:
        if not (isinstance(slots, Container) and slots.kind in ("dict", "ordereddict")):
            raise Fatal("bad-target", "BUILD: slot state is not a dictionary")
        if slots.items:
            raise _no_method(inst, "BUILD", "settable attributes")


HANDLERS: dict[str, Callable[[VM], Any]] = {
    "APPEND": _h_append,
    "BUILD": _h_build,
    "DICT": _h_dict,
    "EMPTY_DICT": _h_empty_dict,
    "APPENDS": _h_appends,
    "LIST": _h_list,
    "EMPTY_LIST": _h_empty_list,
    "SETITEM": _h_setitem,
    "TUPLE": _h_tuple,
    "EMPTY_TUPLE": _h_empty_tuple,
    "SETITEMS": _h_setitems,
    "TUPLE1": _tuple_n(1),
    "TUPLE2": _tuple_n(2),
    "TUPLE3": _tuple_n(3),
    "EMPTY_SET": _h_empty_set,
    "ADDITEMS": _h_additems,
    "FROZENSET": _h_frozenset,
}
