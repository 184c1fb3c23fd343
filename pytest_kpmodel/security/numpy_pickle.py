"""Plain pickles of numpy arrays (detectron2's and Caffe2's ``.pkl`` checkpoints): scan and load.

A ``.pkl`` model-zoo file is ``pickle.dump`` of a dict of numpy arrays. Unpickling one needs a
handful of numpy globals that rebuild arrays from raw bytes; the profile below lists exactly
those, each with the one argument shape it may be called with, and nothing else. A plain pickle
whose every import is on this list is scanned with these rules (kind ``numpy-pickle``); it is
then loadable by :func:`load_numpy_pickle`, a ``pickle.Unpickler`` whose ``find_class`` hands out
only these globals, each wrapped so that it re-checks its arguments when called. There is no
path through which such a file reaches an unrestricted unpickler.

How the list was made: ``pickle.dumps`` (numpy 2.4, Python 3.11) with protocols 2-5 of dicts
of arrays of every plain dtype (bool, int8-64, uint8-64, float16-64, complex64/128, both byte
orders; C and Fortran order; empty arrays; numpy scalars), and the detectron2 model-zoo layout
written by ``benchmarks/detectron2_parity.py``, listing the globals they import; numpy 2 names
them under ``numpy._core``, numpy 1 and Python 2 under ``numpy.core`` (a Python 2 protocol-2
stream, with byte strings and ``dtype(spec, 0, 1)``, is rebuilt by hand in the tests), both
are listed. Files are read as detectron2's ``DetectionCheckpointer`` reads them
(``pickle.load(f, encoding="latin1")``, which also reads Python 2 pickles of Detectron1 /
Caffe2). Object, string, structured and datetime dtypes are refused: they are not weights, and
object arrays would unpickle arbitrary objects.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from typing import Any

from ..errors import RefusedToLoad, first_line
from .allowlist import Allowed, Allowlist
from .pickle_scan import Blob, Container, Global, Obj, Opaque, PickleRules
from .pickle_scan.errors import BadArgs
from .pickle_scan.opcodes import BYNAME
from .pickle_scan.values import typename
from .report import ScanReport, file_identity

KIND = "numpy-pickle"

_RECONSTRUCT = "Rebuilds an empty ndarray (called as _reconstruct(numpy.ndarray, (0,), b'b')) that BUILD then fills from (version, shape, dtype, fortran, raw bytes): ndarray.__reduce__ for protocols 2-4."
_ENTRIES: tuple[Allowed, ...] = (
    Allowed("numpy.core.multiarray", "_reconstruct", "call", _RECONSTRUCT + " numpy < 2 name."),
    Allowed("numpy._core.multiarray", "_reconstruct", "call", _RECONSTRUCT + " numpy >= 2 name."),
    Allowed(
        "numpy",
        "ndarray",
        "type",
        "The class argument of _reconstruct; never called, never the target of NEWOBJ.",
    ),
    Allowed(
        "numpy",
        "dtype",
        "call",
        "dtype(spec, False, True) for a plain numeric spec ('f4', 'i8', 'b1'...), then BUILD "
        "with (3, byte order, None, None, None, -1, -1, 0): how every array's dtype is pickled.",
    ),
    Allowed(
        "numpy.core.multiarray",
        "scalar",
        "call",
        "A numpy scalar (np.float32(...)) as scalar(dtype, raw bytes of one item); numpy < 2.",
    ),
    Allowed(
        "numpy._core.multiarray",
        "scalar",
        "call",
        "A numpy scalar as scalar(dtype, raw bytes of one item); numpy >= 2.",
    ),
    Allowed(
        "numpy.core.numeric",
        "_frombuffer",
        "call",
        "Protocol 5 (the default from Python 3.14): _frombuffer(bytes, dtype, shape, order) "
        "with the data in-band; numpy < 2 name.",
    ),
    Allowed(
        "numpy._core.numeric",
        "_frombuffer",
        "call",
        "Protocol 5: _frombuffer(bytes, dtype, shape, order), data in-band; numpy >= 2 name.",
    ),
    Allowed(
        "_codecs",
        "encode",
        "call",
        "Protocol 2 written by Python 3 pickles bytes as _codecs.encode(str, 'latin1'): the "
        "raw array data. Only that argument shape is accepted.",
    ),
    Allowed(
        "builtins",
        "bytes",
        "call",
        "Protocol 2 pickles an empty bytes object (the data of an empty array) as "
        "__builtin__.bytes() (builtins.bytes for Python 3); only without arguments.",
    ),
)
NAMES = frozenset(e.full for e in _ENTRIES)

# dtype spec -> item size; the only dtypes an array, scalar or buffer may have
_DTYPES = {
    "b1": 1, "i1": 1, "i2": 2, "i4": 4, "i8": 8, "u1": 1, "u2": 2, "u4": 4, "u8": 8,
    "f2": 2, "f4": 4, "f8": 8, "c8": 8, "c16": 16,
}  # fmt: skip
_SPEC = re.compile(r"^[biufc][0-9]{1,2}$")

_OPCODES = frozenset(
    BYNAME[n]
    for n in (
        "PROTO", "FRAME", "STOP", "MARK", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "TUPLE",
        "TUPLE1", "TUPLE2", "TUPLE3", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "MEMOIZE",
        "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "BINUNICODE", "SHORT_BINUNICODE",
        "BINUNICODE8", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
        "BYTEARRAY8", "NONE", "NEWTRUE", "NEWFALSE", "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD",
        "APPEND", "APPENDS", "SETITEM", "SETITEMS",
    )
)  # fmt: skip


class _NumpyAllowlist(Allowlist):
    def __init__(self) -> None:
        self.entries = {(e.module, e.name): e for e in _ENTRIES}
        self.profiles = ()
        self.extra = []


# --------------------------------------------------------------------------- scanning


def _size(v: Any) -> int | None:
    """Byte size of a bytes-like literal; None when it cannot be known statically."""
    if isinstance(v, bytes | str):
        return len(v)
    if isinstance(v, Blob):
        return v.size
    if isinstance(v, Obj) and v.kind == "np-bytes":
        return v.info
    raise BadArgs(f"data is a {typename(v)}, not raw bytes")


def _dtype_arg(v: Any) -> int:
    if not (isinstance(v, Obj) and v.kind == "np-dtype"):
        raise BadArgs(f"dtype argument is a {typename(v)}, not a numpy dtype")
    return int(v.info)


def _shape(v: Any) -> int:
    if not (isinstance(v, Container) and v.kind == "tuple"):
        raise BadArgs(f"shape is a {typename(v)}, not a tuple")
    if not all(type(x) is int and x >= 0 for x in v.items):
        raise BadArgs("shape holds something other than non-negative ints")
    n = 1
    for x in v.items:
        n *= x
    if n >= 1 << 62:
        raise BadArgs("shape overflows")
    return n


def _check_data(numel: int, itemsize: int, data: Any) -> None:
    size = _size(data)
    if size is not None and size != numel * itemsize:
        raise BadArgs(f"{size} bytes of data for {numel} items of {itemsize} bytes")


def _c_reconstruct(vm: Any, a: list[Any]) -> Any:
    if len(a) != 3:
        raise BadArgs(f"takes 3 arguments, got {len(a)}")
    cls = a[0]
    if not (isinstance(cls, Global) and cls.full == "numpy.ndarray"):
        raise BadArgs(f"builds a {typename(cls)}, not a numpy.ndarray")
    if not (isinstance(a[1], Container) and a[1].kind == "tuple" and a[1].items == [0]):
        raise BadArgs("shape argument must be (0,)")
    if a[2] not in (b"b", "b"):
        raise BadArgs("type code must be b'b'")
    return Obj("np-array")


def _c_dtype(vm: Any, a: list[Any]) -> Any:
    # bools from Python 3, the ints 0 and 1 from Python 2's numpy
    if len(a) != 3 or not all(type(x) in (bool, int) and x in (0, 1) for x in a[1:]):
        raise BadArgs("expects (spec, align, copy)")
    spec = a[0]
    if not (isinstance(spec, str) and _SPEC.match(spec) and spec in _DTYPES):
        raise BadArgs(f"dtype {spec!r} is not a plain numeric dtype")
    return Obj("np-dtype", _DTYPES[spec])


def _c_scalar(vm: Any, a: list[Any]) -> Any:
    if len(a) != 2:
        raise BadArgs(f"takes 2 arguments, got {len(a)}")
    _check_data(1, _dtype_arg(a[0]), a[1])
    return Obj("np-scalar")


def _c_frombuffer(vm: Any, a: list[Any]) -> Any:
    if len(a) != 4:
        raise BadArgs(f"takes 4 arguments, got {len(a)}")
    itemsize = _dtype_arg(a[1])
    numel = _shape(a[2])
    if a[3] not in ("C", "F"):
        raise BadArgs(f"order {a[3]!r} is not 'C' or 'F'")
    _check_data(numel, itemsize, a[0])
    vm.result.tensors += 1
    array = Obj("np-array")
    array.built = True
    return array


def _c_encode(vm: Any, a: list[Any]) -> Any:
    if len(a) != 2 or a[1] != "latin1":
        raise BadArgs("only encode(str, 'latin1') (protocol 2 bytes) is accepted")
    s = a[0]
    if isinstance(s, str):
        try:
            return s.encode("latin1")
        except UnicodeEncodeError:
            raise BadArgs("string is not latin-1 (the unpickler fails here)") from None
    if isinstance(s, Blob):
        return Obj("np-bytes", None)  # its byte size is only known after decoding
    raise BadArgs(f"encodes a {typename(s)}, not a str")


def _c_bytes(vm: Any, a: list[Any]) -> Any:
    if a:
        raise BadArgs("only bytes() without arguments (an empty bytes object) is accepted")
    return b""


_CALLS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "numpy.core.multiarray._reconstruct": _c_reconstruct,
    "numpy._core.multiarray._reconstruct": _c_reconstruct,
    "numpy.dtype": _c_dtype,
    "numpy.core.multiarray.scalar": _c_scalar,
    "numpy._core.multiarray.scalar": _c_scalar,
    "numpy.core.numeric._frombuffer": _c_frombuffer,
    "numpy._core.numeric._frombuffer": _c_frombuffer,
    "_codecs.encode": _c_encode,
    "builtins.bytes": _c_bytes,
}


def _build(vm: Any, inst: Any, state: Any) -> bool:
    """BUILD of an array or dtype made by the calls above; True when handled here."""
    if not (isinstance(inst, Obj) and inst.kind in ("np-array", "np-dtype")):
        return False
    if isinstance(state, Container) and any(isinstance(x, Opaque) for x in state.items):
        return True  # built from something already reported
    if inst.built:
        vm.finding("build-target", f"second BUILD on a {inst.kind}")
        return True
    try:
        if inst.kind == "np-dtype":
            _check_dtype_state(state)
        else:
            _check_array_state(state)
            vm.result.tensors += 1
    except BadArgs as e:
        vm.finding("build-state", f"BUILD of a numpy {inst.kind[3:]}: {e}")
        return True
    inst.built = True
    return True


def _check_dtype_state(state: Any) -> None:
    if not (isinstance(state, Container) and state.kind == "tuple"):
        raise BadArgs(f"state is a {typename(state)}, not a tuple")
    s = state.items
    if len(s) != 8 or s[0] != 3 or type(s[0]) is not int:
        raise BadArgs("expects the version-3 state (3, order, None, None, None, -1, -1, 0)")
    if s[1] not in ("<", ">", "|") or s[2:5] != [None, None, None] or s[5:] != [-1, -1, 0]:
        raise BadArgs("only plain numeric dtypes (no fields, subarrays or flags)")


def _check_array_state(state: Any) -> None:
    if not (isinstance(state, Container) and state.kind == "tuple") or len(state.items) != 5:
        raise BadArgs("expects (version, shape, dtype, fortran, data)")
    version, shape, dtype, fortran, data = state.items
    if version != 1 or type(version) is not int or type(fortran) is not bool:
        raise BadArgs("expects (1, shape, dtype, bool, data)")
    _check_data(_shape(shape), _dtype_arg(dtype), data)


def rules() -> PickleRules:
    """The scan rules for a plain pickle of numpy arrays (no persistent ids)."""
    return PickleRules(
        _OPCODES,
        _NumpyAllowlist(),
        None,
        frozenset({2, 3, 4, 5}),
        "pickle.dump of numpy arrays",
        calls=_CALLS,
        build=_build,
        encoding="latin1",
    )


# --------------------------------------------------------------------------- loading


def _numpy_attr(modules: tuple[str, ...], name: str) -> Any:
    import importlib

    for m in modules:
        try:
            return getattr(importlib.import_module(m), name)
        except (ImportError, AttributeError):
            continue
    raise RefusedToLoad(f"refused to load: this numpy has no {name}")  # pragma: no cover


def _numeric(dtype: Any) -> Any:
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or dtype.fields:
        raise pickle.UnpicklingError(f"numpy pickle with a non-numeric dtype {dtype!r}")
    return dtype


def _guards() -> dict[tuple[str, str], Callable[..., Any]]:
    import codecs

    import numpy as np

    reconstruct = _numpy_attr(("numpy._core.multiarray", "numpy.core.multiarray"), "_reconstruct")
    scalar = _numpy_attr(("numpy._core.multiarray", "numpy.core.multiarray"), "scalar")
    frombuffer = _numpy_attr(("numpy._core.numeric", "numpy.core.numeric"), "_frombuffer")

    def g_reconstruct(cls: Any, shape: Any, code: Any) -> Any:
        if cls is not np.ndarray or tuple(shape) != (0,) or code not in (b"b", "b"):
            raise pickle.UnpicklingError("_reconstruct called with other arguments than numpy's")
        return reconstruct(cls, shape, code)

    def g_dtype(spec: Any, align: Any = False, copy: Any = True) -> Any:
        if not isinstance(spec, str) or spec not in _DTYPES:
            raise pickle.UnpicklingError(f"numpy pickle with a non-numeric dtype {spec!r}")
        return np.dtype(spec, bool(align), bool(copy))

    def g_scalar(dtype: Any, data: Any) -> Any:
        return scalar(_numeric(dtype), data)

    def g_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
        return frombuffer(buf, _numeric(dtype), shape, order)

    def g_encode(s: Any, encoding: Any) -> Any:
        if not isinstance(s, str) or encoding != "latin1":
            raise pickle.UnpicklingError("_codecs.encode called with other arguments")
        return codecs.encode(s, "latin1")

    def g_bytes(*args: Any) -> bytes:
        if args:
            raise pickle.UnpicklingError("bytes() called with arguments")
        return b""

    out: dict[tuple[str, str], Callable[..., Any]] = {}
    for entry in _ENTRIES:
        kind = entry.name
        out[(entry.module, entry.name)] = {
            "_reconstruct": g_reconstruct,
            "ndarray": np.ndarray,
            "dtype": g_dtype,
            "scalar": g_scalar,
            "_frombuffer": g_frombuffer,
            "encode": g_encode,
            "bytes": g_bytes,
        }[kind]
    out[("__builtin__", "bytes")] = g_bytes  # the protocol-2 name, before fix_imports
    return out


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source
        self.table = _guards()

    def find_class(self, module: str, name: str) -> Any:
        found = self.table.get((module, name))
        if found is None:
            raise RefusedToLoad(
                f"refused to load: {self.source}: the pickle imports {module}.{name}, which is "
                "not a numpy array reconstruction"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedToLoad(f"refused to load: {self.source}: the pickle uses persistent ids")


def load_numpy_pickle(path: str | os.PathLike[str], report: ScanReport) -> Any:
    """Unpickle a clean-scanned numpy pickle with the restricted unpickler (latin-1 strings,
    like ``DetectionCheckpointer``)."""
    p = os.fspath(path)
    if os.path.realpath(report.path) != os.path.realpath(p):
        raise RefusedToLoad(f"refused to load: {p}: the scan report is for {report.path}")
    report.raise_if_unsafe()
    if report.kind != KIND:
        raise RefusedToLoad(
            f"refused to load: {p}: a {report.kind} file, not a plain pickle of numpy arrays"
        )
    with open(p, "rb") as f:
        if report.identity is not None and file_identity(os.fstat(f.fileno())) != report.identity:
            raise RefusedToLoad(f"refused to load: {p}: the file changed since it was scanned")
        try:
            return _Unpickler(f, p).load()
        except RefusedToLoad:
            raise
        except Exception as e:  # a malformed stream: one message, never a traceback
            raise RefusedToLoad(
                f"refused to load: {p}: unpickling failed: {first_line(e)}"
            ) from None


def scan_numpy_pickle(ctx: Any, start: int, end: int) -> bool:
    """Scan a whole-file plain pickle with the numpy rules when it imports numpy array
    reconstruction (True: scanned, its findings are in ``ctx.col``; any other import is a
    finding naming it); False leaves it to the generic plain-pickle scan. Array data literals may be as large as the file (a 1024 x 12544 float32
    fc weight is 51 MB), so the per-literal limit is the file size here."""
    from dataclasses import replace

    from .pickle_scan import scan_pickle
    from .report import Collector

    limits = replace(ctx.limits, max_string=max(ctx.limits.max_string, end - start))
    scratch = Collector("", limits)
    probe = scan_pickle(ctx.buf, start, end, scratch, rules(), limits, base=start)
    if not set(probe.globals) & NAMES:
        return False  # not a numpy pickle at all: the generic plain-pickle scan reports it
    res = scan_pickle(ctx.buf, start, end, ctx.col, rules(), limits, base=start)
    ctx.add_globals(res.globals)
    ctx.tensors += res.tensors
    if res.complete and res.end != end:
        ctx.col.add(
            "security.pickle",
            "trailing-data",
            f"{end - res.end} bytes after the pickle's STOP (stacked pickle or appended data)",
            offset=res.end - start,
        )
    ctx.col.add(
        "security.container",
        "numpy-pickle",
        f"plain pickle of numpy arrays ({res.tensors} arrays; a detectron2/Caffe2 .pkl), scanned "
        "against the numpy reconstruction profile; loaded, if clean, by a restricted unpickler",
        severity="info",
    )
    return True
