"""Opcodes that push a literal: numbers, strings, bytes, None/True/False, buffers. Text
literals are parsed as _pickle.c parses them (C strings, strtol, PyOS_string_to_double).
"""

from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Fatal
from .values import Blob, Global, Obj, Opaque, typename

if TYPE_CHECKING:
    from .machine import VM

# strtol(s, &end, 0) as load_int calls it: C whitespace, a sign, then hex, octal or decimal
_INT_C = re.compile(rb"^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")


# what PyOS_string_to_double accepts (no whitespace, no underscores)
_FLOAT_C = re.compile(
    rb"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf(inity)?|nan)$", re.IGNORECASE
)


_C_LONG = 1 << 63


def py_int(vm: VM, text: bytes, base: int, what: str) -> int:
    """PyLong_FromString(text, NULL, base) - which is what int(bytes, base) calls."""
    if len(text) > 4300:
        raise vm.limit("max_string", len(text))
    try:
        return int(text, base)
    except ValueError:
        raise Fatal("bad-literal", f"invalid {what} literal {text[:40]!r}") from None


def _h_int(vm: VM) -> None:
    # load_int: strtol(s, &end, 0); True/False for a 2-character 0 or 1; when strtol fails
    # (trailing bytes, overflow) PyLong_FromString(s, NULL, 0)
    line = vm.textline()
    m = _INT_C.match(line)
    if m:
        sign, digits = m.group(1), m.group(2)
        if digits[:2] in (b"0x", b"0X"):
            v = int(digits[2:], 16)
        elif len(digits) > 1:
            v = int(digits, 8 if digits[:1] == b"0" else 10)
        else:
            v = int(digits)
        v = -v if sign == b"-" else v
        if -_C_LONG <= v < _C_LONG:
            vm.stack.append(bool(v) if len(line) == 2 and v in (0, 1) else v)
            return
    vm.stack.append(py_int(vm, line, 0, "integer"))


def _h_long(vm: VM) -> None:
    line = vm.textline()
    if line.endswith(b"L"):
        line = line[:-1]
    vm.stack.append(py_int(vm, line, 0, "LONG"))


def _h_float(vm: VM) -> None:
    line = vm.textline()
    if not _FLOAT_C.match(line):
        raise Fatal("bad-literal", f"invalid FLOAT literal {line[:40]!r}")
    v = float(line)
    if v in (float("inf"), float("-inf")) and b"n" not in line.lower():
        raise Fatal("bad-literal", f"FLOAT literal {line[:40]!r} overflows (OverflowError)")
    vm.stack.append(v)


def _h_binfloat(vm: VM) -> None:
    vm.stack.append(struct.unpack(">d", vm.read(8))[0])


def _h_binint(vm: VM) -> None:
    vm.stack.append(struct.unpack("<i", vm.read(4))[0])


def _h_binint1(vm: VM) -> None:
    vm.stack.append(vm.read(1)[0])


def _h_binint2(vm: VM) -> None:
    vm.stack.append(struct.unpack("<H", vm.read(2))[0])


def _long_bytes(vm: VM, n: int) -> None:
    if n < 0:
        raise Fatal("bad-length", "LONG pickle has negative byte count")
    if n > vm.limits.max_string:
        raise vm.limit("max_string", n)
    vm.stack.append(int.from_bytes(vm.read(n), "little", signed=True))


def _h_long1(vm: VM) -> None:
    _long_bytes(vm, vm.read(1)[0])


def _h_long4(vm: VM) -> None:
    _long_bytes(vm, struct.unpack("<i", vm.read(4))[0])


def _h_none(vm: VM) -> None:
    vm.stack.append(None)


def _h_true(vm: VM) -> None:
    vm.stack.append(True)


def _h_false(vm: VM) -> None:
    vm.stack.append(False)


def _decode_str(vm: VM, data: bytes | Blob) -> Any:
    """Protocol 0-2 byte strings: CPython decodes them with the unpickler's encoding
    (torch.load: utf-8) into ``str``."""
    if isinstance(data, Blob):
        return data
    try:
        return data.decode(vm.rules.encoding)
    except UnicodeDecodeError:
        raise Fatal(
            "bad-literal", "byte string is not valid utf-8 (torch.load fails here)"
        ) from None


def _h_string(vm: VM) -> None:
    line = vm.readline()
    if len(line) >= 2 and line[:1] == line[-1:] and line[:1] in (b"'", b'"'):
        try:
            data = codecs.escape_decode(line[1:-1])[0]
        except ValueError:
            raise Fatal("bad-literal", "invalid escape in STRING literal") from None
        vm.stack.append(_decode_str(vm, data))
    else:
        raise Fatal("bad-literal", "the STRING opcode argument must be quoted")


def _h_binstring(vm: VM) -> None:
    n = struct.unpack("<i", vm.read(4))[0]
    if n < 0:
        raise Fatal("bad-length", "BINSTRING pickle has negative byte count")
    vm.stack.append(_decode_str(vm, vm.sized(n)))


def _h_short_binstring(vm: VM) -> None:
    vm.stack.append(_decode_str(vm, vm.sized(vm.read(1)[0])))


def _h_unicode(vm: VM) -> None:
    line = vm.readline()
    try:
        vm.stack.append(str(line, "raw-unicode-escape"))
    except UnicodeDecodeError:
        raise Fatal("bad-literal", "invalid UNICODE literal") from None


def _unicode(vm: VM, n: int) -> None:
    data = vm.sized(n)
    if isinstance(data, Blob):
        vm.stack.append(data)
        return
    try:
        vm.stack.append(data.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        raise Fatal("bad-literal", "invalid utf-8 in unicode literal") from None


def _h_binunicode(vm: VM) -> None:
    _unicode(vm, struct.unpack("<I", vm.read(4))[0])


def _h_short_binunicode(vm: VM) -> None:
    _unicode(vm, vm.read(1)[0])


def _h_binunicode8(vm: VM) -> None:
    _unicode(vm, struct.unpack("<Q", vm.read(8))[0])


def _h_binbytes(vm: VM) -> None:
    vm.stack.append(vm.sized(struct.unpack("<I", vm.read(4))[0], into=True))


def _h_short_binbytes(vm: VM) -> None:
    vm.stack.append(vm.sized(vm.read(1)[0], into=True))


def _h_binbytes8(vm: VM) -> None:
    vm.stack.append(vm.sized(struct.unpack("<Q", vm.read(8))[0], into=True))


def _h_bytearray8(vm: VM) -> None:
    n = struct.unpack("<Q", vm.read(8))[0]
    vm.sized(n, into=True)
    vm.stack.append(Blob(n, mutable=True))


def _h_next_buffer(vm: VM) -> None:
    raise Fatal(
        "out-of-band", "pickle refers to out-of-band buffers (NEXT_BUFFER), which torch never uses"
    )


def _h_readonly_buffer(vm: VM) -> None:
    # PyMemoryView_FromObject: only objects with the buffer protocol (bytes, bytearray)
    t = vm.top()
    if not isinstance(t, (bytes, Blob, Opaque, Obj, Global)):
        raise Fatal("bad-literal", f"READONLY_BUFFER on a {typename(t)} (no buffer protocol)")


HANDLERS: dict[str, Callable[[VM], Any]] = {
    "FLOAT": _h_float,
    "INT": _h_int,
    "BININT": _h_binint,
    "BININT1": _h_binint1,
    "LONG": _h_long,
    "BININT2": _h_binint2,
    "NONE": _h_none,
    "STRING": _h_string,
    "BINSTRING": _h_binstring,
    "SHORT_BINSTRING": _h_short_binstring,
    "UNICODE": _h_unicode,
    "BINUNICODE": _h_binunicode,
    "BINFLOAT": _h_binfloat,
    "NEWTRUE": _h_true,
    "NEWFALSE": _h_false,
    "LONG1": _h_long1,
    "LONG4": _h_long4,
    "BINBYTES": _h_binbytes,
    "SHORT_BINBYTES": _h_short_binbytes,
    "SHORT_BINUNICODE": _h_short_binunicode,
    "BINUNICODE8": _h_binunicode8,
    "BINBYTES8": _h_binbytes8,
    "BYTEARRAY8": _h_bytearray8,
    "NEXT_BUFFER": _h_next_buffer,
    "READONLY_BUFFER": _h_readonly_buffer,
}
