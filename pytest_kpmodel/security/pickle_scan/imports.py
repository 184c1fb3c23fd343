"""Opcodes that import, call or name a persistent object: GLOBAL, STACK_GLOBAL, INST, OBJ,
NEWOBJ(_EX), REDUCE, PERSID/BINPERSID and EXT1/2/4. The machine decides what an import or a
call may do (:meth:`.machine.VM.make_global`, :meth:`.machine.VM.call`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Fatal
from .values import OPAQUE, Opaque

if TYPE_CHECKING:
    from .machine import VM


def _line_name(vm: VM, enc: str) -> str:
    line = vm.readline()
    if not line:  # load_global/load_inst: an empty name is "pickle data was truncated"
        raise Fatal("truncated", f"pickle data was truncated ({vm.op_name} name is empty)")
    try:
        return line.decode(enc)
    except UnicodeDecodeError:
        raise Fatal("bad-literal", f"{vm.op_name} name is not valid {enc}") from None


def _h_global(vm: VM) -> None:
    module = _line_name(vm, "utf-8")
    name = _line_name(vm, "utf-8")
    vm.stack.append(vm.make_global(module, name, "GLOBAL"))


def _h_stack_global(vm: VM) -> None:
    name = vm.pop()
    module = vm.pop()
    if isinstance(name, Opaque) or isinstance(module, Opaque):
        # the name was computed by a call already reported (''.join(...), getattr...)
        vm.finding(
            "dynamic-global",
            "STACK_GLOBAL imports a name computed at load time by an earlier call; what it "
            "imports cannot be known without running the stream",
        )
        vm.stack.append(OPAQUE)
        return
    if type(name) is not str or type(module) is not str:
        raise Fatal("stack-global", "STACK_GLOBAL requires str")
    vm.stack.append(vm.make_global(module, name, "STACK_GLOBAL"))


def _h_inst(vm: VM) -> None:
    # load_inst pops the MARK before reading the names
    args = vm.pop_mark()
    module = _line_name(vm, "ascii")
    name = _line_name(vm, "ascii")
    cls = vm.make_global(module, name, "INST")
    vm.stack.append(vm.call(cls, vm.container("tuple", args), "INST"))


def _h_obj(vm: VM) -> None:
    items = vm.pop_mark()
    if not items:
        raise Fatal("underflow", "OBJ without a class")
    cls = items.pop(0)
    vm.stack.append(vm.call(cls, vm.container("tuple", items), "OBJ"))


def _h_newobj(vm: VM) -> None:
    args = vm.pop()
    cls = vm.pop()
    vm.stack.append(vm.call(cls, args, "NEWOBJ"))


def _h_newobj_ex(vm: VM) -> None:
    kwargs = vm.pop()
    args = vm.pop()
    cls = vm.pop()
    vm.stack.append(vm.call(cls, args, "NEWOBJ_EX", kwargs=kwargs))


def _h_reduce(vm: VM) -> None:
    args = vm.pop()
    func = vm.pop()
    vm.stack.append(vm.call(func, args, "REDUCE"))


def _h_persid(vm: VM) -> None:
    line = vm.readline()
    try:
        pid = line.decode("ascii")
    except UnicodeDecodeError:
        raise Fatal("bad-literal", "persistent id is not ascii") from None
    vm.stack.append(vm.persistent(pid))


def _h_binpersid(vm: VM) -> None:
    vm.stack.append(vm.persistent(vm.pop()))


def _ext(n: int) -> Callable[[VM], None]:
    fmt = {1: "<B", 2: "<H", 4: "<i"}[n]

    def h(vm: VM) -> None:
        code = struct.unpack(fmt, vm.read(n))[0]
        if code <= 0:
            raise Fatal("bad-literal", "EXT specifies code <= 0")
        vm.finding(
            "extension",
            f"EXT{n} loads global #{code} from copyreg's extension registry, which can name "
            "any registered callable",
            name=f"<extension {code}>",
        )
        vm.stack.append(OPAQUE)

    return h


HANDLERS: dict[str, Callable[[VM], Any]] = {
    "PERSID": _h_persid,
    "BINPERSID": _h_binpersid,
    "REDUCE": _h_reduce,
    "GLOBAL": _h_global,
    "INST": _h_inst,
    "OBJ": _h_obj,
    "NEWOBJ": _h_newobj,
    "EXT1": _ext(1),
    "EXT2": _ext(2),
    "EXT4": _ext(4),
    "NEWOBJ_EX": _h_newobj_ex,
    "STACK_GLOBAL": _h_stack_global,
}
