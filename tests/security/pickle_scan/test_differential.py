"""The scanner's pickle machine against CPython's own C unpickler, with hypothesis.

* Random nested values (None, bools, ints of every size, floats, str, bytes, bytearrays, lists,
  tuples, dicts, sets, frozensets, shared and recursive references), pickled by CPython with
  protocols 0-5: the scanner parses them without a structural error and builds the same value
  CPython's unpickler builds (globals such as ``builtins.set`` in old protocols are imports for
  both: a stand-in object for CPython, an opaque value for the scanner).
* Random opcode streams: the scanner never crashes or hangs, and whenever CPython's unpickler -
  run with a ``find_class`` that records instead of importing, reading the stream both as
  bytes and as a file - imports or calls anything outside the allow-list, the scanner names it
  in an ``unsafe`` finding.

CPython runs here only on streams whose every global resolves to a recording stand-in: nothing
is imported and no callable of the stream's choosing exists.
"""

from __future__ import annotations

import _compat_pickle
import _pickle
import io
import pickle
import pickletools
import struct
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_kpmodel.security.allowlist import Allowlist
from pytest_kpmodel.security.pickle_scan import (
    Blob,
    Container,
    Opaque,
    StorageTable,
    make_rules,
    scan_pickle,
)
from pytest_kpmodel.security.report import Collector, ScanLimits, worst

# captured at import: the no_unpickle fixture replaces the module attributes during the tests
_UNPICKLER = _pickle.Unpickler
VALUE_EXAMPLES = 600
STREAM_EXAMPLES = 600
LIMITS = ScanLimits(max_ops=20_000)


# --------------------------------------------------------------------------- CPython's reading


class _Stub:
    """What a recorded global stands for: records every way the unpickler can call into it."""

    events: list[tuple[str, str]] = []
    full = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
        cls.events.append(("call", cls.full))
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.events.append(("call", f"{self.full}.__setstate__"))

    def extend(self, items: Any) -> None:
        self.events.append(("call", f"{self.full}.extend"))

    def append(self, item: Any) -> None:
        self.events.append(("call", f"{self.full}.append"))

    def add(self, item: Any) -> None:
        self.events.append(("call", f"{self.full}.add"))

    def __setitem__(self, k: Any, v: Any) -> None:
        self.events.append(("call", f"{self.full}.__setitem__"))


def _recording_unpickler(events: list[tuple[str, str]]) -> type:
    class Recording(_UNPICKLER):  # type: ignore[misc, valid-type]
        def find_class(self, module: str, name: str) -> type:
            events.append(("import", f"{module}.{name}"))
            return type("Stub", (_Stub,), {"events": events, "full": f"{module}.{name}"})

    return Recording


class _PeekAll(io.RawIOBase):
    """A file whose peek() returns everything left: _pickle.c then reads it like bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n is None or n < 0 else self.pos + n
        out = self.data[self.pos : end]
        self.pos += len(out)
        return out

    def readinto(self, b: Any) -> int:
        out = self.read(len(b))
        b[: len(out)] = out
        return len(out)

    def readline(self, size: int | None = -1) -> bytes:
        i = self.data.find(b"\n", self.pos)
        end = len(self.data) if i < 0 else i + 1
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def peek(self, n: int = 0) -> bytes:
        return self.data[self.pos :]


def cpython_load(data: bytes, reading: str) -> tuple[Any, list[tuple[str, str]], bool]:
    """(value, events, ok) as CPython's C unpickler reads ``data`` from a BytesIO (``"file"``,
    as torch.load does) or like ``pickle.loads`` (``"bytes"``)."""
    events: list[tuple[str, str]] = []
    src = io.BytesIO(data) if reading == "file" else _PeekAll(data)
    try:
        return _recording_unpickler(events)(src, encoding="utf-8").load(), events, True
    except Exception:  # noqa: BLE001 - any failure: CPython stops here
        return None, events, False


# --------------------------------------------------------------------------- shapes


def _shape(v: Any, seen: dict[int, int], scanner: bool) -> Any:
    if scanner:
        if isinstance(v, Opaque):
            return ("opaque",)
        if isinstance(v, Blob):
            if v.mutable:
                if id(v) in seen:
                    return ("ref", seen[id(v)])
                seen[id(v)] = len(seen)
            return ("blob", v.size)
        if isinstance(v, Container):
            kind, items = v.kind, v.items
            if kind in ("list", "dict", "set"):
                if id(v) in seen:
                    return ("ref", seen[id(v)])
                seen[id(v)] = len(seen)
        else:
            kind, items = "", None
    else:
        if isinstance(v, _Stub) or (isinstance(v, type) and issubclass(v, _Stub)):
            return ("opaque",)
        kind = {list: "list", dict: "dict", set: "set", tuple: "tuple", frozenset: "frozenset"}
        kind = kind.get(type(v), "")  # type: ignore[assignment]
        if type(v) in (list, dict, set, bytearray):
            if id(v) in seen:
                return ("ref", seen[id(v)])
            seen[id(v)] = len(seen)
        if type(v) is bytearray:
            return ("blob", len(v))
        items = None
        if kind == "dict":
            items = [x for kv in v.items() for x in kv]
        elif kind:
            items = list(v)
    if kind == "dict":
        return ("dict", [_shape(x, seen, scanner) for x in items])  # type: ignore[union-attr]
    if kind in ("set", "frozenset"):
        return (kind, sorted(repr(_shape(x, seen, scanner)) for x in items))  # type: ignore[union-attr]
    if kind:
        return (kind, [_shape(x, seen, scanner) for x in items])  # type: ignore[union-attr]
    if isinstance(v, float):
        return ("float", repr(v))
    return (type(v).__name__, v)


def shape(v: Any, scanner: bool) -> Any:
    return _shape(v, {}, scanner)


def scan(data: bytes) -> tuple[Any, Collector, Any]:
    col = Collector("stream", LIMITS)
    table = StorageTable(col, None, legacy=False)
    rules = make_rules("torch", Allowlist(), table)
    res = scan_pickle(data, 0, len(data), col, rules, LIMITS)
    return res, col, worst(f.details["verdict"] for f in col.findings if f.severity == "fail")


# --------------------------------------------------------------------------- values

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-300, max_value=300),
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.binary(max_size=12),
)
_hashable = st.recursive(
    _scalars,
    lambda c: st.tuples(c, c) | st.frozensets(c, max_size=3) | st.tuples(c),
    max_leaves=6,
)


def _nested(children: Any) -> Any:
    return st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children) | st.tuples(children) | st.just(()),
        st.dictionaries(_hashable, children, max_size=4),
        st.sets(_hashable, max_size=4),
        st.frozensets(_hashable, max_size=4),
        st.binary(max_size=8).map(bytearray),
    )


_values = st.recursive(_scalars | st.floats(), _nested, max_leaves=25)


def _containers(v: Any, out: list[Any], seen: set[int]) -> None:
    if id(v) in seen:
        return
    if isinstance(v, (list, dict, tuple)):
        seen.add(id(v))
        out.append(v)
        for x in v.values() if isinstance(v, dict) else v:
            _containers(x, out, seen)


@st.composite
def values_with_sharing(draw: st.DrawFn) -> Any:
    """A nested value, then some of its containers placed inside others (shared references
    and cycles, also through tuples)."""
    v = draw(_values)
    root = [v]
    found: list[Any] = []
    _containers(root, found, set())
    lists = [c for c in found if isinstance(c, list)]
    dicts = [c for c in found if isinstance(c, dict)]
    for _ in range(draw(st.integers(0, 4))):
        c = draw(st.sampled_from(found))
        if dicts and draw(st.booleans()):
            draw(st.sampled_from(dicts))[draw(_hashable)] = c
        else:
            draw(st.sampled_from(lists)).append(c)
    return root


SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@settings(SETTINGS, max_examples=VALUE_EXAMPLES)
@given(
    value=values_with_sharing(),
    protocol=st.integers(0, 5),
    pickler=st.sampled_from(["c", "python", "optimized"]),
)
def test_cpython_pickles_parse_to_the_same_value(
    value: Any, protocol: int, pickler: str, no_unpickle
) -> None:
    if pickler == "python":
        buf = io.BytesIO()
        pickle._Pickler(buf, protocol).dump(value)
        data = buf.getvalue()
    else:
        data = pickle.dumps(value, protocol)
        if pickler == "optimized":
            data = pickletools.optimize(data)
    expected, _events, ok = cpython_load(data, "file")
    assert ok
    res, col, _verdict = scan(data)
    structural = [
        f.message
        for f in col.findings
        if f.severity == "fail" and f.details["verdict"] == "unverifiable"
    ]
    assert res.complete and not structural, structural
    assert res.end == len(data)
    assert shape(res.value, scanner=True) == shape(expected, scanner=False)


def test_protocol0_list_and_dict_roots(no_unpickle) -> None:
    """The LIST/DICT regression: a protocol-0 pickle whose root is built by LIST or DICT."""
    for value in ([1, "a", None], {"a": 1, "b": [2.5]}, [{"x": ()}], {}):
        for proto in (0, 1):
            data = pickle.dumps(value, proto)
            res, col, _ = scan(data)
            assert res.complete, [f.message for f in col.findings]
            assert shape(res.value, True) == shape(cpython_load(data, "file")[0], False)


# --------------------------------------------------------------------------- opcode streams

NAMES = [
    ("builtins", "open"),
    ("os", "system"),
    ("posix", "system"),
    ("__builtin__", "eval"),
    ("copy_reg", "_reconstructor"),
    ("collections", "OrderedDict"),
    ("argparse", "Namespace"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch", "FloatStorage"),
    ("builtins", "set"),
    ("pathlib", "os.system"),
]


def _su(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


@st.composite
def snippet(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 11))
    small = st.integers(0, 40)
    if kind >= 10:  # a whole call: global, arguments, REDUCE/NEWOBJ/OBJ/BUILD
        m, n = draw(st.sampled_from(NAMES))
        g = b"c" + m.encode() + b"\n" + n.encode() + b"\n"
        return draw(
            st.sampled_from(
                [g + b")R", g + b"(NtR", g + b")\x81", b"(" + g + b"o", g + b")R}b",
                 b"]" + g + b"a", g + b")}\x92", b"(" + g + b"N" + b"o"]
            )
        )  # fmt: skip
    if kind == 0:
        m, n = draw(st.sampled_from(NAMES))
        how = draw(st.sampled_from(["global", "stack", "inst", "string"]))
        if how == "global":
            return b"c" + m.encode() + b"\n" + n.encode() + b"\n"
        if how == "stack":
            return _su(m) + _su(n) + b"\x93"
        if how == "string":
            return f"S'{m}'\nS'{n}'\n".encode() + b"\x93"
        return b"(" + b"i" + m.encode() + b"\n" + n.encode() + b"\n"
    if kind == 1:
        return draw(st.sampled_from([b"R", b"\x81", b"\x92", b"o", b"b", b"R", b"b"]))
    if kind == 2:  # literals
        return draw(
            st.sampled_from(
                [b"N", b"\x88", b"\x89", b"K\x01", b"J\xff\xff\xff\xff", b"\x8a\x01\x05",
                 _su("x"), b"X\x01\x00\x00\x00y", b"C\x01z", b"U\x01s", b"S'q'\n", b"Vu\n",
                 b"I7\n", b"I01\n", b"L9L\n", b"F1.5\n", b"G" + struct.pack(">d", 2.0),
                 b"\x96\x01" + b"\x00" * 7 + b"w", b"T\x01\x00\x00\x00t"]
            )
        )  # fmt: skip
    if kind == 3:  # containers
        return draw(
            st.sampled_from(
                [b"]", b"}", b")", b"\x8f", b"(", b"t", b"\x85", b"\x86", b"\x87", b"l", b"d",
                 b"a", b"e", b"s", b"u", b"\x90", b"\x91", b"("]
            )
        )  # fmt: skip
    if kind == 4:  # memo
        i = draw(small)
        return draw(
            st.sampled_from(
                [b"q" + bytes([i]), b"h" + bytes([i]), b"\x94", b"p%d\n" % i, b"g%d\n" % i,
                 b"r" + struct.pack("<I", i), b"j" + struct.pack("<I", i)]
            )
        )  # fmt: skip
    if kind == 5:  # stack
        return draw(st.sampled_from([b"0", b"1", b"2"]))
    if kind == 6:
        return b"\x80" + bytes([draw(st.integers(0, 5))])
    if kind == 7:  # frames, often cut short or overlong on purpose
        return b"\x95" + struct.pack("<Q", draw(st.integers(0, 48)))
    if kind == 8:
        return draw(
            st.sampled_from([b"\x82\x01", b"Q", b"Pid\n", b"\x98", b"\x97", b".", b"\x8d\x00" * 4])
        )
    return draw(st.sampled_from([b"(", b"]", b"}", b"N", b"t", b"R", b"b", b"s", b"a"]))


def _candidates(module: str, name: str) -> set[str]:
    """The names the scanner may report for a global CPython's find_class received raw
    (protocols < 3 map Python 2 names)."""
    out = {f"{module}.{name}"}
    if (module, name) in _compat_pickle.NAME_MAPPING:
        out.add(".".join(_compat_pickle.NAME_MAPPING[(module, name)]))
    if module in _compat_pickle.IMPORT_MAPPING:
        out.add(f"{_compat_pickle.IMPORT_MAPPING[module]}.{name}")
    return out


def _raw_pairs() -> dict[str, tuple[str, str]]:
    return {f"{m}.{n}": (m, n) for m, n in NAMES}


STREAM_COUNTS = {"examples": 0, "cpython_imported_disallowed": 0, "cpython_called": 0}


@settings(SETTINGS, max_examples=STREAM_EXAMPLES)
@given(
    parts=st.lists(snippet(), max_size=40), proto=st.sampled_from([b"", b"\x80\x02", b"\x80\x04"])
)
def test_random_opcode_streams_against_cpython(
    parts: list[bytes], proto: bytes, no_unpickle
) -> None:
    data = proto + b"".join(parts) + b"."
    allow = Allowlist()
    raw = _raw_pairs()
    t0 = time.perf_counter()
    res, col, verdict = scan(data)
    assert time.perf_counter() - t0 < 5.0
    assert not [f for f in col.findings if f.details["code"] == "internal-error"]
    named = set(res.globals)
    STREAM_COUNTS["examples"] += 1
    for reading in ("bytes", "file"):
        _value, events, _ok = cpython_load(data, reading)
        for what, full in events:
            base = full.split(".__setstate__")[0]
            for suffix in (".extend", ".append", ".add", ".__setitem__"):
                base = base.removesuffix(suffix)
            module, name = raw.get(base, tuple(base.rsplit(".", 1)))
            cands = _candidates(module, name)
            if any(allow.lookup(*c.rsplit(".", 1)) for c in cands) and what == "import":
                continue  # an allowed import; calls of allowed globals are checked by the scanner
            if what == "call":
                STREAM_COUNTS["cpython_called"] += 1
                if any(allow.lookup(*c.rsplit(".", 1)) for c in cands):
                    continue
            else:
                STREAM_COUNTS["cpython_imported_disallowed"] += 1
            assert verdict == "unsafe", (reading, what, full, [f.message for f in col.findings])
            assert cands & named, (reading, full, named)
