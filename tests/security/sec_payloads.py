"""Attack samples, generated from code. Each payload, if a loader ever ran it, would only
create a marker file at the path it is given (``open(marker, "w")`` or ``os.open(marker,
O_WRONLY | O_CREAT)``); the tests assert that the scanner flags it and the marker never appears.
A positive control (tests/security/test_pickle_attacks.py) runs the "live" ones with CPython's
own unpickler in a subprocess, to prove each sample really is a working bypass attempt.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

O_CREAT_WRONLY = os.O_WRONLY | os.O_CREAT

# --------------------------------------------------------------------------- assembler

PROTO2 = b"\x80\x02"
PROTO4 = b"\x80\x04"
STOP = b"."
MARK = b"("
REDUCE = b"R"
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
POP = b"0"
EMPTY_DICT = b"}"
EMPTY_TUPLE = b")"
NONE = b"N"
SETITEM = b"s"
BUILD = b"b"
NEWOBJ = b"\x81"
NEWOBJ_EX = b"\x92"


def su(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def bu(s: str) -> bytes:  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def glob(module: str, name: str) -> bytes:  # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def k(i: int) -> bytes:  # BININT1 / BININT
    return b"K" + bytes([i]) if 0 <= i < 256 else b"J" + struct.pack("<i", i)


def frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


def open_args(marker: str) -> bytes:
    return bu(marker) + bu("w") + TUPLE2


def osopen_args(marker: str) -> bytes:
    return bu(marker) + k(O_CREAT_WRONLY) + TUPLE2


# --------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Sample:
    name: str
    build: Callable[[str], bytes]  # marker path -> file bytes
    codes: tuple[str, ...]  # finding codes that must be among the report's
    live: str | None = "pickle"  # positive control: "pickle" (pickle.loads), "torch" (torch.load
    # weights_only=False), "pickle-torch" (pickle.loads with torch importable), None: not run
    filename: str = "model.pt"


def _frame_proto4(m: str) -> bytes:
    body = su("builtins") + su("open") + STACK_GLOBAL + open_args(m) + REDUCE + STOP
    return PROTO4 + frame(body)


def _frame_proto2(m: str) -> bytes:
    # a FRAME in a protocol-2 stream: _pickle.c accepts FRAME whatever the protocol
    body = glob("builtins", "open") + open_args(m) + REDUCE + STOP
    return PROTO2 + frame(body)


def _frame_short(m: str) -> bytes:
    # the FRAME claims 1 byte; the GLOBAL/REDUCE follow outside it (frame-skipping scanners
    # that trust the length and jump see nothing)
    body = glob("builtins", "open") + open_args(m) + REDUCE + STOP
    return PROTO2 + frame(body[:1]) + body[1:]


def _pickletools_abort(m: str) -> bytes:
    # re-PUT of a memo key is fine for CPython but makes pickletools.dis raise ("memo key
    # already defined") before it reaches the GLOBAL
    return (
        PROTO2
        + NONE
        + b"q\x00q\x00"
        + POP
        + glob("builtins", "open")
        + open_args(m)
        + REDUCE
        + STOP
    )


def _memo_memoize(m: str) -> bytes:
    return (
        PROTO4
        + su("builtins")
        + MEMOIZE
        + POP
        + su("open")
        + MEMOIZE
        + POP
        + b"h\x00h\x01"
        + STACK_GLOBAL
        + open_args(m)
        + REDUCE
        + STOP
    )


def _memo_put_get(m: str) -> bytes:
    return (
        PROTO2
        + bu("builtins")
        + b"q\x07"
        + POP
        + bu("open")
        + b"r\x09\x00\x00\x00"
        + POP
        + b"h\x07j\x09\x00\x00\x00"
        + STACK_GLOBAL
        + open_args(m)
        + REDUCE
        + STOP
    )


def _string_opcodes(m: str) -> bytes:
    # protocol-0 STRING literals decode to str, which STACK_GLOBAL accepts
    return (
        b"S'builtins'\nS'open'\n"
        + STACK_GLOBAL
        + MARK
        + b"S'"
        + m.encode()
        + b"'\nS'w'\n"
        + TUPLE
        + REDUCE
        + STOP
    )


def _binstring_opcodes(m: str) -> bytes:
    return (
        PROTO2
        + b"U\x08builtins"
        + b"T\x04\x00\x00\x00open"
        + STACK_GLOBAL
        + open_args(m)
        + REDUCE
        + STOP
    )


def _importlib(m: str) -> bytes:
    mod = glob("importlib", "import_module") + bu("builtins") + TUPLE1 + REDUCE
    fn = glob("builtins", "getattr") + MARK + mod + bu("open") + TUPLE + REDUCE
    return PROTO2 + fn + open_args(m) + REDUCE + STOP


def _pkgutil(m: str) -> bytes:
    fn = glob("pkgutil", "resolve_name") + bu("builtins:open") + TUPLE1 + REDUCE
    return PROTO2 + fn + open_args(m) + REDUCE + STOP


def _dotted_proto4(m: str) -> bytes:
    # protocol >= 4 resolves dotted names attribute by attribute: pathlib.os.open == os.open
    return PROTO4 + su("pathlib") + su("os.open") + STACK_GLOBAL + osopen_args(m) + REDUCE + STOP


def _getattr_chain(m: str) -> bytes:
    fn = glob("builtins", "getattr") + glob("pathlib", "os") + bu("open") + TUPLE2 + REDUCE
    return PROTO2 + fn + osopen_args(m) + REDUCE + STOP


def _torch_submodule(m: str) -> bytes:
    # an allowed package, a submodule and a dotted name: torch.serialization.os.open
    return (
        PROTO4
        + su("torch.serialization")
        + su("os.open")
        + STACK_GLOBAL
        + osopen_args(m)
        + REDUCE
        + STOP
    )


def _torch_weights_only_name(m: str) -> bytes:
    # torch's own weights_only list accepts this one; ours does not (only sparse tensors use it)
    fn = glob("torch.serialization", "_get_layout") + bu("torch.strided") + TUPLE1 + REDUCE
    return PROTO2 + fn + STOP


def _numpy_builtins(m: str) -> bytes:
    # numpy.__builtins__ is the builtins dict; its .get is reachable as a dotted name
    fn = su("numpy") + su("__builtins__.get") + STACK_GLOBAL + su("open") + TUPLE1 + REDUCE
    return PROTO4 + fn + open_args(m) + REDUCE + STOP


def _numpy_reconstruct(m: str) -> bytes:
    # numpy arrays alone are accepted (security/numpy_pickle.py: detectron2's .pkl); an object
    # array smuggles its items' own reductions in through the same _reconstruct path
    import numpy as np

    class _Open:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (open, (m, "w"))

    return pickle.dumps({"w": np.array([_Open()], dtype=object)}, protocol=2)


def _inst(m: str) -> bytes:
    return MARK + bu(m) + bu("w") + b"ibuiltins\nopen\n" + STOP


def _obj(m: str) -> bytes:
    return PROTO2 + MARK + glob("builtins", "open") + bu(m) + bu("w") + b"o" + STOP


def _newobj_ex(m: str) -> bytes:
    return (
        PROTO4
        + su("io")
        + su("FileIO")
        + STACK_GLOBAL
        + bu(m)
        + bu("w")
        + TUPLE2
        + EMPTY_DICT
        + NEWOBJ_EX
        + STOP
    )


def _build_on_class(m: str) -> bytes:
    # only allow-listed names: BUILD on the Namespace *class* would monkeypatch it process-wide
    state = NONE + EMPTY_DICT + bu("__repr__") + glob("collections", "OrderedDict") + SETITEM
    return PROTO2 + glob("argparse", "Namespace") + state + TUPLE2 + BUILD + STOP


def _build_dunder(m: str) -> bytes:
    ns = glob("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ
    state = EMPTY_DICT + bu("__class__") + glob("collections", "OrderedDict") + SETITEM
    return PROTO2 + ns + state + BUILD + STOP


def _build_setstate_gadget(m: str) -> bytes:
    # BUILD on an object whose __setstate__ is reached through a disallowed class
    return (
        PROTO2 + glob("pathlib", "PosixPath") + bu(m) + TUPLE1 + REDUCE + EMPTY_DICT + BUILD + STOP
    )


def _append_gadget(m: str) -> bytes:
    # APPEND on a non-list calls its extend/append attribute: a Namespace (allowed) whose
    # __dict__ BUILD filled with {"extend": OrderedDict} makes CPython call OrderedDict([1])
    ns = glob("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ
    state = EMPTY_DICT + bu("extend") + glob("collections", "OrderedDict") + SETITEM
    return PROTO2 + ns + state + BUILD + k(1) + b"a" + STOP


def _ext(m: str) -> bytes:
    return PROTO2 + b"\x82\x01" + open_args(m) + REDUCE + STOP


def _trailing_stacked(m: str) -> bytes:
    benign = pickle.dumps({"w": 1}, protocol=2)
    evil = PROTO2 + glob("builtins", "open") + open_args(m) + REDUCE + STOP
    return benign + evil


def evil_pickle(m: str) -> bytes:
    """The plain payload: builtins.open(marker, 'w')."""
    return PROTO2 + glob("builtins", "open") + open_args(m) + REDUCE + STOP


PICKLE_SAMPLES: list[Sample] = [
    Sample("frame_proto4", _frame_proto4, ("disallowed-global", "opcode")),
    Sample("frame_in_proto2", _frame_proto2, ("disallowed-global", "opcode")),
    Sample("frame_short_length", _frame_short, ("disallowed-global", "opcode")),
    Sample("pickletools_abort", _pickletools_abort, ("disallowed-global",)),
    Sample("memo_memoize_stack_global", _memo_memoize, ("disallowed-global", "opcode")),
    Sample("memo_put_get_stack_global", _memo_put_get, ("disallowed-global", "opcode")),
    Sample("string_opcode_names", _string_opcodes, ("disallowed-global", "opcode")),
    Sample("binstring_opcode_names", _binstring_opcodes, ("disallowed-global", "opcode")),
    Sample("importlib_import_module", _importlib, ("disallowed-global",)),
    Sample("pkgutil_resolve_name", _pkgutil, ("disallowed-global",)),
    Sample("dotted_name_proto4", _dotted_proto4, ("disallowed-global",)),
    Sample("builtins_getattr_chain", _getattr_chain, ("disallowed-global",)),
    Sample("torch_submodule_dotted", _torch_submodule, ("disallowed-global",), "pickle-torch"),
    Sample("torch_weights_only_extra", _torch_weights_only_name, ("disallowed-global",), None),
    Sample("numpy_builtins_get", _numpy_builtins, ("disallowed-global",)),
    Sample("numpy_reconstruct", _numpy_reconstruct, ("disallowed-global",), None),
    Sample("inst", _inst, ("disallowed-global", "opcode")),
    Sample("obj", _obj, ("disallowed-global", "opcode")),
    Sample("newobj_ex", _newobj_ex, ("disallowed-global", "opcode"), None),
    Sample("build_on_class", _build_on_class, ("build-target",), None),
    Sample("build_dunder_state", _build_dunder, ("build-state",), None),
    Sample("build_setstate_gadget", _build_setstate_gadget, ("disallowed-global",), None),
    Sample("append_on_non_list", _append_gadget, ("append-target",), None),
    Sample("ext_opcode", _ext, ("extension", "opcode"), None),
    Sample("stacked_pickles", _trailing_stacked, ("trailing-data",), None),
    Sample(
        "pickle_named_safetensors",
        evil_pickle,
        ("disallowed-global",),
        filename="model.safetensors",
    ),
]

# --------------------------------------------------------------------------- torch files


def tiny_state_dict():  # type: ignore[no-untyped-def]
    import torch

    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "conv.bias": torch.zeros(4),
        "bn.num_batches_tracked": torch.tensor(3),
    }


def torch_zip_bytes(obj: object | None = None) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(tiny_state_dict() if obj is None else obj, buf)
    return buf.getvalue()


def torch_legacy_bytes(obj: object | None = None) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(tiny_state_dict() if obj is None else obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def rezip(members: list[tuple[str, bytes]]) -> bytes:
    """Write members with Python's zipfile (STORED), e.g. after swapping one."""
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, data in members:
                z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def replace_member(data: bytes, suffix: str, new: bytes) -> bytes:
    return rezip([(n, new if n.endswith(suffix) else d) for n, d in zip_members(data)])


def legacy_parts(data: bytes) -> list[bytes]:
    """Split a legacy torch file into its 5 pickles and the storage bytes."""
    import pickletools

    f = io.BytesIO(data)
    parts = []
    for _ in range(5):
        start = f.tell()
        for _op in pickletools.genops(f):
            pass
        parts.append(data[start : f.tell()])
    parts.append(data[f.tell() :])
    return parts


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    import json

    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data
