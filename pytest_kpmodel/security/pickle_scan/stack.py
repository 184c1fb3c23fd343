"""Opcodes that move the stack and the memo (MARK, POP, DUP, GET/PUT/MEMOIZE), and PROTO,
FRAME and STOP.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Fatal
from .literals import py_int

if TYPE_CHECKING:
    from .machine import VM


def _h_mark(vm: VM) -> None:
    vm.metastack.append(vm.stack)
    vm.stack = []
    if len(vm.metastack) > vm.limits.max_depth:
        raise vm.limit("max_depth", len(vm.metastack))


def _h_stop(vm: VM) -> bool:
    value = vm.pop()
    if vm.pos < vm.fend:
        # a file reader has read the whole frame: the next pickle.load(f) starts after it
        vm.straddle(vm.pos)
    if vm.stack or vm.metastack:
        vm.finding(
            "stop-leftover",
            f"STOP leaves {len(vm.stack)} stack items and {len(vm.metastack)} marks behind; "
            "torch.save never does",
        )
    vm.result.value = value
    vm.result.end = vm.pos
    vm.result.file_end = max(vm.pos, vm.fend)
    vm.result.complete = True
    return True


def _h_pop(vm: VM) -> None:
    # load_pop: an empty segment above a MARK pops the MARK itself
    if vm.stack:
        vm.stack.pop()
    elif vm.metastack:
        vm.pop_mark()
    else:
        raise Fatal("underflow", "unpickling stack underflow")


def _h_pop_mark(vm: VM) -> None:
    vm.pop_mark()


def _h_dup(vm: VM) -> None:
    vm.stack.append(vm.top())


def _memo_get(vm: VM, idx: int) -> None:
    try:
        vm.stack.append(vm.memo[idx])
    except KeyError:
        raise Fatal("memo", f"memo value not found at index {idx}") from None


def _memo_put(vm: VM, idx: int) -> None:
    value = vm.top()  # underflow first, as in load_put
    if idx < 0:
        raise Fatal("memo", "negative PUT argument")
    if idx > vm.limits.max_memo:
        raise vm.limit("max_memo", idx)
    vm.memo[idx] = value
    if len(vm.memo) > vm.limits.max_memo:
        raise vm.limit("max_memo", len(vm.memo))


def _h_get(vm: VM) -> None:
    _memo_get(vm, py_int(vm, vm.textline(), 10, "GET index"))


def _h_binget(vm: VM) -> None:
    _memo_get(vm, vm.read(1)[0])


def _h_long_binget(vm: VM) -> None:
    _memo_get(vm, struct.unpack("<I", vm.read(4))[0])


def _h_put(vm: VM) -> None:
    line = vm.textline()
    vm.top()  # load_put checks the stack before parsing the index
    _memo_put(vm, py_int(vm, line, 10, "PUT index"))


def _h_binput(vm: VM) -> None:
    _memo_put(vm, vm.read(1)[0])


def _h_long_binput(vm: VM) -> None:
    _memo_put(vm, struct.unpack("<I", vm.read(4))[0])


def _h_memoize(vm: VM) -> None:
    _memo_put(vm, len(vm.memo))


def _h_proto(vm: VM) -> None:
    proto = vm.read(1)[0]
    if proto > 5:
        raise Fatal("protocol", f"unsupported pickle protocol: {proto}")
    if vm.seen_proto or vm.op_off != vm.start:
        vm.finding("proto-position", "PROTO opcode that is not the first opcode")
    elif proto not in vm.rules.protocols:
        vm.finding("protocol", f"pickle protocol {proto}; {vm.rules.what} writes protocol 2")
    vm.seen_proto = True
    vm.proto = proto


def _h_frame(vm: VM) -> None:
    # load_frame: _Unpickler_Read(frame_len), then rewind. From bytes that only checks that
    # the frame is there. From a file it fills the buffer with the frame - unless the frame
    # fits in what is left of the buffer (a FRAME inside a frame).
    n = struct.unpack("<Q", vm.read(8))[0]
    p = vm.pos
    if p < vm.fend:
        if p + n <= vm.fend:
            return
        p = vm.straddle(p)
    if p + n > vm.end:
        raise Fatal("truncated", "FRAME longer than the remaining data")
    vm.pos = p
    vm.fend = p + n


HANDLERS: dict[str, Callable[[VM], Any]] = {
    "MARK": _h_mark,
    "STOP": _h_stop,
    "POP": _h_pop,
    "POP_MARK": _h_pop_mark,
    "DUP": _h_dup,
    "GET": _h_get,
    "BINGET": _h_binget,
    "LONG_BINGET": _h_long_binget,
    "PUT": _h_put,
    "BINPUT": _h_binput,
    "LONG_BINPUT": _h_long_binput,
    "PROTO": _h_proto,
    "MEMOIZE": _h_memoize,
    "FRAME": _h_frame,
}
