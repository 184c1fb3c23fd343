"""A static pickle scanner that follows CPython's ``_pickle`` unpickler, never executing it.

The scanner is a symbolic stack machine: it runs every opcode of protocols 0-5 the way the C
unpickler does (the stack, MARK fences, the memo with PUT/GET/MEMOIZE indirection, FRAME,
protocol-dependent ``fix_imports`` name mapping, C-string parsing of text literals, what
built-in objects do when APPEND/SETITEM/BUILD/REDUCE reach them) but instead of importing and
calling, it pushes symbolic values. It reads the stream like ``pickle.loads(bytes)``; where an
opcode crosses the end of a FRAME, ``pickle.load(file)`` - how torch.load reads data.pkl -
reads different bytes, so such a stream is a ``framing`` finding and is read a second time the
way the file reader does (see ``_VM._straddle``). tests/security/test_differential.py checks
the machine against CPython's own unpickler.

So a ``STACK_GLOBAL`` whose module and name come from the memo or
from protocol-0 ``STRING`` opcodes is resolved exactly as CPython would resolve it; a GLOBAL
inside a FRAME is seen like any other; ``APPEND``/``SETITEMS``/``BUILD`` on objects that are
not plain lists/dicts (which CPython turns into attribute lookups and calls) are findings.

Policy on top of the machine (for torch files):

* opcodes: only those torch.save (protocol 2) emits - the same set torch's ``weights_only``
  unpickler accepts. Others (INST, OBJ, NEWOBJ_EX, EXT*, FRAME, STACK_GLOBAL, MEMOIZE, text
  opcodes, buffers...) are findings, and are still executed symbolically so that what they
  hide is reported too.
* globals: exact ``(module, name)`` match against :mod:`.allowlist` after the same
  ``_compat_pickle`` mapping CPython applies for protocol < 3. Dotted names, submodules and
  aliases never match.
* calls: REDUCE/NEWOBJ of allow-listed callables only, with their arguments checked: tensor
  rebuilds get storage bounds checks (offset, sizes, strides within the storage).
* persistent ids: ``('storage', type, key, location, numel)`` (zip) or the legacy 6-tuple
  with view metadata; the storages are handed back for the container to check.
* resource limits: opcode count, memo size/index, nesting and MARK depth, literal sizes.

Anything malformed stops the scan with an ``unverifiable`` finding (CPython would raise at the
same point - but only after running what came before, which has already been reported). Each
finding's label (unsafe / unverifiable / unsupported) is in :data:`.report.LABELS`.

API: :func:`scan_pickle` (one stream inside a buffer), :class:`PickleRules` and the
``*_RULES`` presets, :class:`StorageRef`.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..allowlist import QUANTIZED_STORAGES, Allowed, Allowlist
from ..report import UNSAFE, UNSUPPORTED, UNVERIFIABLE, Collector, ScanLimits

# --------------------------------------------------------------------------- opcodes
OPCODES: dict[int, str] = {
    0x28: "MARK", 0x2E: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT",
    0x49: "INT", 0x4A: "BININT", 0x4B: "BININT1", 0x4C: "LONG", 0x4D: "BININT2", 0x4E: "NONE",
    0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING",
    0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD",
    0x63: "GLOBAL", 0x64: "DICT", 0x7D: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET",
    0x68: "BINGET", 0x69: "INST", 0x6A: "LONG_BINGET", 0x6C: "LIST", 0x5D: "EMPTY_LIST",
    0x6F: "OBJ", 0x70: "PUT", 0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x73: "SETITEM",
    0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
    0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1",
    0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8A: "LONG1",
    0x8B: "LONG4", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x8C: "SHORT_BINUNICODE",
    0x8D: "BINUNICODE8", 0x8E: "BINBYTES8", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS",
    0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
    0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
}  # fmt: skip
_BYNAME = {v: k for k, v in OPCODES.items()}

# What torch.save (pickle protocol 2) emits - and torch's weights_only unpickler accepts.
TORCH_OPCODES = frozenset(
    _BYNAME[n]
    for n in [
        "PROTO",
        "STOP",
        "MARK",
        "EMPTY_DICT",
        "EMPTY_LIST",
        "EMPTY_TUPLE",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "BINPUT",
        "LONG_BINPUT",
        "BINGET",
        "LONG_BINGET",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG1",
        "BINFLOAT",
        "BINUNICODE",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "GLOBAL",
        "REDUCE",
        "BUILD",
        "NEWOBJ",
        "BINPERSID",
        "APPEND",
        "APPENDS",
        "SETITEM",
        "SETITEMS",
    ]
)
# The small header pickles of the legacy format (magic number, protocol version, sys_info,
# storage keys): plain values only.
HEADER_OPCODES = frozenset(
    _BYNAME[n]
    for n in [
        "PROTO",
        "STOP",
        "MARK",
        "EMPTY_DICT",
        "EMPTY_LIST",
        "BINPUT",
        "LONG_BINPUT",
        "BINGET",
        "LONG_BINGET",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG1",
        "BINUNICODE",
        "NEWTRUE",
        "NEWFALSE",
        "SETITEM",
        "SETITEMS",
        "APPEND",
        "APPENDS",
    ]
)
TORCH_PROTOCOLS = frozenset({2, 3})

# --------------------------------------------------------------------------- values


class _Sym:
    __slots__ = ()
    depth = 0


class Global(_Sym):
    __slots__ = ("module", "name", "entry", "offset")

    def __init__(self, module: str, name: str, entry: Allowed | None, offset: int) -> None:
        self.module, self.name, self.entry, self.offset = module, name, entry, offset

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"


class Opaque(_Sym):
    """The result of something that was already reported (a disallowed import or call)."""

    __slots__ = ()


OPAQUE = Opaque()


class Blob(_Sym):
    """A large bytes/str literal that is not kept in memory (or any bytearray)."""

    __slots__ = ("size", "mutable")

    def __init__(self, size: int, mutable: bool = False) -> None:
        self.size, self.mutable = size, mutable


class Container(_Sym):
    __slots__ = ("items", "depth", "kind")

    def __init__(self, kind: str, items: list[Any], depth: int) -> None:
        self.kind, self.items, self.depth = kind, items, depth


class Obj(_Sym):
    """The result of an allowed call: a tensor, a parameter, a Namespace, an extra global."""

    __slots__ = ("kind", "info", "depth", "built")

    def __init__(self, kind: str, info: Any = None) -> None:
        self.kind, self.info, self.depth, self.built = kind, info, 1, False


@dataclass
class StorageRef(_Sym):
    """A storage named by a persistent id (``view`` = legacy (offset, size) in elements)."""

    key: str
    type_name: str  # "torch.FloatStorage"
    itemsize: int
    numel: int  # elements of type_name (bytes for UntypedStorage)
    location: str
    offset: int  # where the persistent id is, in the member/file
    view: tuple[int, int] | None = None
    depth: int = 0

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def elements(self) -> int:
        """Elements visible through this reference (the view's size for legacy views)."""
        return self.view[1] if self.view is not None else self.numel


def _depth(v: Any) -> int:
    return v.depth if isinstance(v, _Sym) else (0 if not isinstance(v, tuple) else 1)


def _typename(v: Any) -> str:
    if isinstance(v, Container):
        return v.kind
    if isinstance(v, Obj):
        return v.kind
    if isinstance(v, Global):
        return f"global {v.full}"
    if isinstance(v, StorageRef):
        return "storage"
    return type(v).__name__


# --------------------------------------------------------------------------- rules


@dataclass
class PickleRules:
    opcodes: frozenset[int]
    allowlist: Allowlist
    # called with (pid value, offset) for BINPERSID/PERSID; None: persistent ids are findings
    persistent_load: Callable[[Any, int], Any] | None = None
    protocols: frozenset[int] = TORCH_PROTOCOLS
    what: str = "torch.save"  # for messages: "opcode X is never emitted by <what>"
    # A profile's own call checks (full name -> check), its BUILD handler (True when it handled
    # the BUILD) and the unpickler's encoding for protocol 0-2 byte strings; see numpy_pickle.py
    calls: dict[str, Callable[[Any, list[Any]], Any]] = field(default_factory=dict)
    build: Callable[[Any, Any, Any], bool] | None = None
    encoding: str = "utf-8"


@dataclass
class PickleResult:
    value: Any = None
    end: int = 0  # offset just after STOP (absolute, in the buffer)
    # where pickle.load(file) leaves the file: after STOP, or after the frame STOP is in
    file_end: int = 0
    complete: bool = False  # reached STOP without a fatal error
    ops: int = 0
    globals: list[str] = field(default_factory=list)
    tensors: int = 0
    calls: int = 0  # calls and method calls reached (allowed or not)


class _Fatal(Exception):
    """CPython's unpickler raises here (before running anything the opcode would run)."""

    def __init__(self, code: str, why: str, verdict: str = UNVERIFIABLE, check: str = "") -> None:
        super().__init__(why)
        self.code, self.why, self.verdict, self.check = code, why, verdict, check


_PROBE_TOLERATED = frozenset({"opcode", "disallowed-global", "protocol", "extension"})
# findings that mean CPython calls a method of an object the stream built
_CALLING = frozenset({"append-target", "setitem-target", "additems-target", "build-target"})
# strtol(s, &end, 0) as load_int calls it: C whitespace, a sign, then hex, octal or decimal
_INT_C = re.compile(rb"^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")
# what PyOS_string_to_double accepts (no whitespace, no underscores)
_FLOAT_C = re.compile(
    rb"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf(inity)?|nan)$", re.IGNORECASE
)
_C_LONG = 1 << 63
_LOCATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:[0-9]+)?$")
_BIG_LITERAL = 1 << 16  # literals longer than this are kept as Blob(size)


class _VM:
    def __init__(
        self,
        buf: Any,
        start: int,
        end: int,
        col: Collector,
        rules: PickleRules,
        limits: ScanLimits,
        member: str | None,
        base: int,
        reading: str = "bytes",
    ) -> None:
        self.buf, self.start, self.end = buf, start, end
        self.pos = start
        self.col, self.rules, self.limits = col, rules, limits
        self.member, self.base = member, base
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        self.seen_proto = False
        self.result = PickleResult()
        self._globals: dict[str, None] = {}
        self.op_off = start
        self.op_name = ""
        self.probe = False
        # How the stream is read (see _h_frame): "bytes" like pickle.loads(data), "file" like
        # pickle.load(f) on a file without peek() (torch.load reads data.pkl from a BytesIO).
        # ``fend`` is where the file reader's buffer, filled by the last FRAME, ends.
        self.reading = reading
        self.fend = -1
        self.diverged: int | None = None  # first offset where the two readings differ

    # ---- reporting
    def finding(
        self,
        code: str,
        why: str,
        *,
        verdict: str | None = None,
        name: str | None = None,
        **kw: Any,
    ) -> None:
        if self.probe and code not in _PROBE_TOLERATED:
            # probing an unknown file: stop where CPython would most likely fail too
            raise _Fatal(code, why)
        if self.reading == "file":
            kw["reading"] = "pickle.load(file)"
        if code in _CALLING:
            self.result.calls += 1
        self.col.add(
            kw.pop("check", "security.pickle"),
            code,
            why,
            verdict=verdict,
            member=self.member,
            offset=self.op_off - self.base,
            opcode=self.op_name,
            name=name,
            **kw,
        )

    # ---- reading
    # _pickle.c reads opcode arguments with _Unpickler_Read/_Unpickler_Readline. From bytes,
    # the whole input is one buffer. From a file, FRAME reads the frame into the buffer, and a
    # read that needs more than is left in it drops the rest and reads fresh bytes from the
    # file, which stands at the end of the frame (_Unpickler_ReadFromFile). So an opcode that
    # crosses the end of a frame reads different bytes in the two cases: ``_straddle``.
    def _straddle(self, p: int) -> int:
        if self.diverged is None:
            self.diverged = self.op_off
        return self.fend if self.reading == "file" else p

    def read(self, n: int) -> bytes:
        p = self.pos
        if p < self.fend < p + n:
            p = self._straddle(p)
        if n < 0 or p + n > self.end:
            raise _Fatal("truncated", f"pickle data was truncated ({self.op_name} needs {n} bytes)")
        self.pos = p + n
        return self.buf[p : p + n]

    def read_into(self, n: int) -> bytes:
        """_Unpickler_ReadInto (BINBYTES*, BYTEARRAY8): takes what is left of the buffer, then
        reads on from the file, so bytes and file readings agree."""
        p = self.pos
        if n < 0 or p + n > self.end:
            raise _Fatal("truncated", f"pickle data was truncated ({self.op_name} needs {n} bytes)")
        self.pos = p + n
        return self.buf[p : p + n]

    def readline(self) -> bytes:
        p = self.pos
        i = self.buf.find(b"\n", p, self.end)
        if p < self.fend and not p <= i < self.fend:
            p = self._straddle(p)
            if p != self.pos:
                i = self.buf.find(b"\n", p, self.end)
        if i < 0:
            # _pickle.c (3.11) raises "pickle data was truncated" here, bytes or file input
            raise _Fatal("truncated", f"pickle data was truncated ({self.op_name} needs a newline)")
        if i - p > self.limits.max_string:
            raise self._limit("max_string", i - p)
        line = self.buf[p:i]
        self.pos = i + 1
        return line

    def textline(self) -> bytes:
        """A line for INT/LONG/FLOAT/GET/PUT, which _pickle.c parses as a C string: it ends at
        the first NUL, and an empty line is "pickle data was truncated"."""
        line = self.readline()
        if not line:
            raise _Fatal("truncated", f"pickle data was truncated ({self.op_name} line is empty)")
        nul = line.find(b"\x00")
        return line if nul < 0 else line[:nul]

    def _limit(self, which: str, value: int) -> _Fatal:
        return _Fatal(
            "limit-" + which.replace("_", "-"),
            f"resource limit exceeded: {which}={getattr(self.limits, which)} (got {value})",
            check="security.limits",
        )

    def sized(self, n: int, into: bool = False) -> bytes | Blob:
        if n > self.limits.max_string:
            raise self._limit("max_string", n)
        data = self.read_into(n) if into else self.read(n)
        return Blob(n) if n > _BIG_LITERAL else data

    # ---- stack
    def pop(self) -> Any:
        if not self.stack:  # the C stack's "fence": nothing above the top MARK
            raise _Fatal("underflow", "unpickling stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise _Fatal("underflow", "unpickling stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Fatal("no-mark", "could not find MARK")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def container(self, kind: str, items: list[Any]) -> Container:
        d = 1 + max((_depth(x) for x in items), default=0)
        if d > self.limits.max_depth:
            raise self._limit("max_depth", d)
        return Container(kind, items, d)

    def grow(self, c: Container, items: list[Any]) -> None:
        c.items.extend(items)
        d = 1 + max((_depth(x) for x in items), default=0)
        if d > c.depth:
            if d > self.limits.max_depth:
                raise self._limit("max_depth", d)
            c.depth = d

    # ---- main loop
    def run(self) -> PickleResult:
        res = self.result
        try:
            self._loop()
        except _Fatal as e:
            self.col.add(
                e.check or "security.pickle",
                e.code,
                f"{e.why}; CPython's unpickler stops here too, after running what came before",
                verdict=e.verdict,
                member=self.member,
                offset=self.op_off - self.base,
                opcode=self.op_name or None,
                **({"reading": "pickle.load(file)"} if self.reading == "file" else {}),
            )
            res.complete = False
        except RecursionError:  # pragma: no cover - containers are flat; defensive
            self.col.add(
                "security.limits",
                "recursion",
                "pickle too deeply nested",
                verdict=UNVERIFIABLE,
                member=self.member,
            )
        if self.diverged is not None and self.reading == "bytes":
            self.col.add(
                "security.pickle",
                "framing",
                "an opcode crosses the end of its FRAME (or the frame runs past STOP): "
                "pickle.loads(bytes) and pickle.load(file), which torch.load uses, read "
                "different opcodes from here; both readings were scanned",
                member=self.member,
                offset=self.diverged - self.base,
            )
        res.globals = list(self._globals)
        return res

    def _loop(self) -> None:
        buf, rules, limits = self.buf, self.rules, self.limits
        allowed_ops = rules.opcodes
        dispatch = _DISPATCH
        ops = 0
        max_ops = limits.max_ops
        while True:
            p = self.pos
            if p >= self.end:
                self.op_off = p
                self.op_name = ""
                raise _Fatal("truncated", "pickle ended before STOP")
            code = buf[p]
            self.op_off = p
            self.pos = p + 1
            ops += 1
            if ops > max_ops:
                self.result.ops = ops
                raise self._limit("max_ops", ops)
            name = OPCODES.get(code)
            if name is None:
                self.op_name = f"0x{code:02x}"
                raise _Fatal(
                    "bad-opcode", f"invalid opcode byte 0x{code:02x}", verdict=UNVERIFIABLE
                )
            self.op_name = name
            if code not in allowed_ops:
                self.finding(
                    "opcode",
                    f"opcode {name} is never emitted by {rules.what}",
                    dedupe=("opcode", name),
                )
            if dispatch[code](self):
                self.result.ops = ops
                return

    # ---- globals and calls
    def make_global(self, module: str, name: str, how: str) -> Global:
        orig = f"{module}.{name}"
        if self.proto < 3:  # CPython's fix_imports, as in _pickle.c find_class
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        self._globals[full] = None
        entry = self.rules.allowlist.lookup(module, name)
        if entry is None:
            alias = f" (mapped from {orig} for protocol {self.proto})" if orig != full else ""
            self.finding(
                "disallowed-global",
                f"{how} imports {full}{alias}, which is not on the allow-list",
                name=full,
                dedupe=("global", full),
            )
        elif entry.role == "extra":
            self.col.add(
                "security.allowlist",
                "extra-global-used",
                f"{how} imports {full}, allowed only because the caller extended the allow-list",
                severity="info",
                member=self.member,
                name=full,
                dedupe=("extra-used", full),
            )
        return Global(module, name, entry, self.op_off)

    def call(self, func: Any, args: Any, how: str, kwargs: Any = None) -> Any:
        self.result.calls += 1
        if isinstance(func, Opaque):
            return OPAQUE
        newobj = how in ("NEWOBJ", "NEWOBJ_EX")
        if _plain(func):  # built-ins are not callable, and not types for NEWOBJ
            raise _Fatal("bad-target", f"{how} calls a {_typename(func)}, which is not callable")
        if _plain(args) and not (isinstance(args, Container) and args.kind == "tuple"):
            raise _Fatal("bad-target", f"{how} arguments are a {_typename(args)}, not a tuple")
        bad_kwargs = not (isinstance(kwargs, Container) and kwargs.kind == "dict")
        if newobj and kwargs is not None and _plain(kwargs) and bad_kwargs:
            raise _Fatal("bad-target", f"{how} kwargs are a {_typename(kwargs)}, not a dict")
        if not isinstance(func, Global):
            self.finding(
                "call-non-global",
                f"{how} calls a {_typename(func)} object; torch.save only calls allow-listed globals",
            )
            return OPAQUE
        entry = func.entry
        if entry is None:
            return OPAQUE  # the import was reported
        if entry.role in ("extra", "ts"):
            return Obj("extra", func.full)
        if kwargs is not None:
            self.finding(
                "call-kwargs", f"{how} passes keyword arguments to {func.full}", name=func.full
            )
            return OPAQUE
        if not isinstance(args, Container) or args.kind != "tuple":
            self.finding(
                "call-args",
                f"{how} of {func.full} with a {_typename(args)} instead of a tuple",
                name=func.full,
            )
            return OPAQUE
        if entry.role == "module":  # an opt-in profile's nn.Module class (see allowlist.py)
            if how != "NEWOBJ" or args.items:
                self.finding(
                    "call-role",
                    f"{how} of {func.full}: a module class is only created by NEWOBJ without "
                    "arguments (then filled by BUILD)",
                    name=func.full,
                )
                return OPAQUE
            return Obj("module", func.full)
        want = "class" if how in ("NEWOBJ", "NEWOBJ_EX") else "call"
        if entry.role != want:
            self.finding(
                "call-role",
                f"{how} calls {func.full}, which the allow-list permits only as a {entry.role}",
                name=func.full,
            )
            return OPAQUE
        if any(isinstance(a, Opaque) for a in args.items):
            return OPAQUE
        check = self.rules.calls.get(func.full) or _CALL_CHECKS.get(func.full)
        if check is None:  # pragma: no cover - every call/class entry has a check
            return OPAQUE
        try:
            return check(self, args.items)
        except _BadArgs as e:
            self.finding(
                "call-args",
                f"{how} {func.full}: {e}",
                name=func.full,
                dedupe=("args", func.full, str(e)),
            )
            return OPAQUE

    def persistent(self, pid: Any) -> Any:
        if self.rules.persistent_load is None:
            self.finding("persistent-id", "persistent id outside a torch archive")
            return OPAQUE
        if isinstance(pid, Opaque):
            return OPAQUE
        try:
            return self.rules.persistent_load(pid, self.op_off - self.base)
        except _BadArgs as e:
            self.finding("persistent-id", f"persistent id {e}", check="security.tensor")
            return OPAQUE


class _BadArgs(Exception):
    pass


# --------------------------------------------------------------------------- handlers
# Each returns True on STOP.


def _h_mark(vm: _VM) -> None:
    vm.metastack.append(vm.stack)
    vm.stack = []
    if len(vm.metastack) > vm.limits.max_depth:
        raise vm._limit("max_depth", len(vm.metastack))


def _h_stop(vm: _VM) -> bool:
    value = vm.pop()
    if vm.pos < vm.fend:
        # a file reader has read the whole frame: the next pickle.load(f) starts after it
        vm._straddle(vm.pos)
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


def _h_pop(vm: _VM) -> None:
    # load_pop: an empty segment above a MARK pops the MARK itself
    if vm.stack:
        vm.stack.pop()
    elif vm.metastack:
        vm.pop_mark()
    else:
        raise _Fatal("underflow", "unpickling stack underflow")


def _h_pop_mark(vm: _VM) -> None:
    vm.pop_mark()


def _h_dup(vm: _VM) -> None:
    vm.stack.append(vm.top())


def _py_int(vm: _VM, text: bytes, base: int, what: str) -> int:
    """PyLong_FromString(text, NULL, base) - which is what int(bytes, base) calls."""
    if len(text) > 4300:
        raise vm._limit("max_string", len(text))
    try:
        return int(text, base)
    except ValueError:
        raise _Fatal("bad-literal", f"invalid {what} literal {text[:40]!r}") from None


def _h_int(vm: _VM) -> None:
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
    vm.stack.append(_py_int(vm, line, 0, "integer"))


def _h_long(vm: _VM) -> None:
    line = vm.textline()
    if line.endswith(b"L"):
        line = line[:-1]
    vm.stack.append(_py_int(vm, line, 0, "LONG"))


def _h_float(vm: _VM) -> None:
    line = vm.textline()
    if not _FLOAT_C.match(line):
        raise _Fatal("bad-literal", f"invalid FLOAT literal {line[:40]!r}")
    v = float(line)
    if v in (float("inf"), float("-inf")) and b"n" not in line.lower():
        raise _Fatal("bad-literal", f"FLOAT literal {line[:40]!r} overflows (OverflowError)")
    vm.stack.append(v)


def _h_binfloat(vm: _VM) -> None:
    vm.stack.append(struct.unpack(">d", vm.read(8))[0])


def _h_binint(vm: _VM) -> None:
    vm.stack.append(struct.unpack("<i", vm.read(4))[0])


def _h_binint1(vm: _VM) -> None:
    vm.stack.append(vm.read(1)[0])


def _h_binint2(vm: _VM) -> None:
    vm.stack.append(struct.unpack("<H", vm.read(2))[0])


def _long_bytes(vm: _VM, n: int) -> None:
    if n < 0:
        raise _Fatal("bad-length", "LONG pickle has negative byte count")
    if n > vm.limits.max_string:
        raise vm._limit("max_string", n)
    vm.stack.append(int.from_bytes(vm.read(n), "little", signed=True))


def _h_long1(vm: _VM) -> None:
    _long_bytes(vm, vm.read(1)[0])


def _h_long4(vm: _VM) -> None:
    _long_bytes(vm, struct.unpack("<i", vm.read(4))[0])


def _h_none(vm: _VM) -> None:
    vm.stack.append(None)


def _h_true(vm: _VM) -> None:
    vm.stack.append(True)


def _h_false(vm: _VM) -> None:
    vm.stack.append(False)


def _decode_str(vm: _VM, data: bytes | Blob) -> Any:
    """Protocol 0-2 byte strings: CPython decodes them with the unpickler's encoding
    (torch.load: utf-8) into ``str``."""
    if isinstance(data, Blob):
        return data
    try:
        return data.decode(vm.rules.encoding)
    except UnicodeDecodeError:
        raise _Fatal(
            "bad-literal", "byte string is not valid utf-8 (torch.load fails here)"
        ) from None


def _h_string(vm: _VM) -> None:
    line = vm.readline()
    if len(line) >= 2 and line[:1] == line[-1:] and line[:1] in (b"'", b'"'):
        try:
            data = codecs.escape_decode(line[1:-1])[0]
        except ValueError:
            raise _Fatal("bad-literal", "invalid escape in STRING literal") from None
        vm.stack.append(_decode_str(vm, data))
    else:
        raise _Fatal("bad-literal", "the STRING opcode argument must be quoted")


def _h_binstring(vm: _VM) -> None:
    n = struct.unpack("<i", vm.read(4))[0]
    if n < 0:
        raise _Fatal("bad-length", "BINSTRING pickle has negative byte count")
    vm.stack.append(_decode_str(vm, vm.sized(n)))


def _h_short_binstring(vm: _VM) -> None:
    vm.stack.append(_decode_str(vm, vm.sized(vm.read(1)[0])))


def _h_unicode(vm: _VM) -> None:
    line = vm.readline()
    try:
        vm.stack.append(str(line, "raw-unicode-escape"))
    except UnicodeDecodeError:
        raise _Fatal("bad-literal", "invalid UNICODE literal") from None


def _unicode(vm: _VM, n: int) -> None:
    data = vm.sized(n)
    if isinstance(data, Blob):
        vm.stack.append(data)
        return
    try:
        vm.stack.append(data.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        raise _Fatal("bad-literal", "invalid utf-8 in unicode literal") from None


def _h_binunicode(vm: _VM) -> None:
    _unicode(vm, struct.unpack("<I", vm.read(4))[0])


def _h_short_binunicode(vm: _VM) -> None:
    _unicode(vm, vm.read(1)[0])


def _h_binunicode8(vm: _VM) -> None:
    _unicode(vm, struct.unpack("<Q", vm.read(8))[0])


def _h_binbytes(vm: _VM) -> None:
    vm.stack.append(vm.sized(struct.unpack("<I", vm.read(4))[0], into=True))


def _h_short_binbytes(vm: _VM) -> None:
    vm.stack.append(vm.sized(vm.read(1)[0], into=True))


def _h_binbytes8(vm: _VM) -> None:
    vm.stack.append(vm.sized(struct.unpack("<Q", vm.read(8))[0], into=True))


def _h_bytearray8(vm: _VM) -> None:
    n = struct.unpack("<Q", vm.read(8))[0]
    vm.sized(n, into=True)
    vm.stack.append(Blob(n, mutable=True))


def _h_next_buffer(vm: _VM) -> None:
    raise _Fatal(
        "out-of-band", "pickle refers to out-of-band buffers (NEXT_BUFFER), which torch never uses"
    )


def _h_readonly_buffer(vm: _VM) -> None:
    # PyMemoryView_FromObject: only objects with the buffer protocol (bytes, bytearray)
    t = vm.top()
    if not isinstance(t, (bytes, Blob, Opaque, Obj, Global)):
        raise _Fatal("bad-literal", f"READONLY_BUFFER on a {_typename(t)} (no buffer protocol)")


def _h_empty_tuple(vm: _VM) -> None:
    vm.stack.append(Container("tuple", [], 1))


def _h_tuple(vm: _VM) -> None:
    items = vm.pop_mark()
    vm.stack.append(vm.container("tuple", items))


def _tuple_n(n: int) -> Callable[[_VM], None]:
    def h(vm: _VM) -> None:
        if len(vm.stack) < n:
            raise _Fatal("underflow", "unpickling stack underflow")
        items = vm.stack[-n:]
        del vm.stack[-n:]
        vm.stack.append(vm.container("tuple", items))

    return h


def _h_empty_list(vm: _VM) -> None:
    vm.stack.append(Container("list", [], 1))


def _h_list(vm: _VM) -> None:
    items = vm.pop_mark()  # first: pop_mark() replaces vm.stack
    vm.stack.append(vm.container("list", items))


def _h_empty_dict(vm: _VM) -> None:
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


def _check_key(vm: _VM, k: Any) -> None:
    u = _unhashable(k)
    if u is not None:
        raise _Fatal("unhashable", f"unhashable type: {u!r}")


def _pairs(vm: _VM, items: list[Any], what: str) -> list[Any]:
    if len(items) % 2:
        raise _Fatal("odd-items", f"odd number of items for {what}")
    for k in items[::2]:
        _check_key(vm, k)
    return items


def _h_dict(vm: _VM) -> None:
    items = _pairs(vm, vm.pop_mark(), "DICT")  # first: pop_mark() replaces vm.stack
    vm.stack.append(vm.container("dict", items))


# Built-in values (CPython knows their type): a missing method raises instead of running
# anything, and their methods run no code of the file.
_PLAIN = (bytes, str, int, float, bool, type(None), Blob, Container)


def _plain(t: Any) -> bool:
    return isinstance(t, _PLAIN)


def _bytearray(t: Any) -> bool:
    return isinstance(t, Blob) and t.mutable


def _no_method(t: Any, what: str, method: str) -> _Fatal:
    return _Fatal("bad-target", f"{what} on a {_typename(t)}, which has no {method}")


def _dict_target(vm: _VM, target: Any, what: str, n: int) -> Container | None:
    """do_setitems: PyObject_SetItem on the object below the items, for each pair."""
    if isinstance(target, Container) and target.kind in ("dict", "ordereddict"):
        return target
    if isinstance(target, Opaque) or n == 0:
        return None
    if (isinstance(target, Container) and target.kind == "list") or _bytearray(target):
        vm.finding(
            "builtin-mutation",
            f"{what} assigns items of a {_typename(target)} (a built-in __setitem__; no code "
            "runs); torch.save never does",
        )
        return None
    if _plain(target):
        raise _no_method(target, what, "__setitem__")
    vm.finding(
        "setitem-target",
        f"{what} on a {_typename(target)} (CPython calls its __setitem__)",
    )
    return None


def _h_setitem(vm: _VM) -> None:
    v = vm.pop()
    k = vm.pop()
    t = _dict_target(vm, vm.top(), "SETITEM", 1)
    if t is not None:
        _check_key(vm, k)
        vm.grow(t, [k, v])


def _h_setitems(vm: _VM) -> None:
    items = vm.pop_mark()
    target = vm.top()  # underflow first, as in do_setitems
    if not items:
        return  # "nothing to do": no lookup, no call
    if len(items) % 2:
        raise _Fatal("odd-items", "odd number of items for SETITEMS")
    t = _dict_target(vm, target, "SETITEMS", len(items))
    if t is not None:
        _pairs(vm, items, "SETITEMS")
        vm.grow(t, items)


def _list_target(vm: _VM, target: Any, what: str) -> Container | None:
    """do_append: list.extend for a list; else the object's extend, or its append."""
    if isinstance(target, Container) and target.kind == "list":
        return target
    if isinstance(target, Opaque):
        return None
    if _bytearray(target):
        vm.finding(
            "builtin-mutation",
            f"{what} on a bytearray (bytearray.extend; no code runs); torch.save never does",
        )
        return None
    if _plain(target):
        raise _no_method(target, what, "extend or append attribute")
    vm.finding(
        "append-target",
        f"{what} on a {_typename(target)} (CPython calls its extend/append attribute)",
    )
    return None


def _h_append(vm: _VM) -> None:
    v = vm.pop()
    t = _list_target(vm, vm.top(), "APPEND")
    if t is not None:
        vm.grow(t, [v])


def _h_appends(vm: _VM) -> None:
    items = vm.pop_mark()
    target = vm.top()
    if not items:
        # _pickle.c does nothing; pickle.py's _Unpickler still looks up and calls .extend([])
        is_list = isinstance(target, Container) and target.kind == "list"
        if not (is_list or isinstance(target, Opaque)):
            vm.finding(
                "append-target",
                f"APPENDS without items on a {_typename(target)} (_pickle.c does nothing; "
                "pickle.py calls its extend)",
                verdict=UNSUPPORTED if _plain(target) else UNSAFE,
            )
        return
    t = _list_target(vm, target, "APPENDS")
    if t is not None:
        vm.grow(t, items)


def _h_empty_set(vm: _VM) -> None:
    vm.stack.append(Container("set", [], 1))


def _h_additems(vm: _VM) -> None:
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
    elif _plain(t):  # frozenset, list, dict... (a bytearray has no add either)
        raise _no_method(t, "ADDITEMS", "add attribute")
    else:
        vm.finding("additems-target", f"ADDITEMS on a {_typename(t)} (CPython calls its add)")


def _h_frozenset(vm: _VM) -> None:
    items = vm.pop_mark()
    for k in items:
        _check_key(vm, k)
    vm.stack.append(vm.container("frozenset", items))


def _memo_get(vm: _VM, idx: int) -> None:
    try:
        vm.stack.append(vm.memo[idx])
    except KeyError:
        raise _Fatal("memo", f"memo value not found at index {idx}") from None


def _memo_put(vm: _VM, idx: int) -> None:
    value = vm.top()  # underflow first, as in load_put
    if idx < 0:
        raise _Fatal("memo", "negative PUT argument")
    if idx > vm.limits.max_memo:
        raise vm._limit("max_memo", idx)
    vm.memo[idx] = value
    if len(vm.memo) > vm.limits.max_memo:
        raise vm._limit("max_memo", len(vm.memo))


def _h_get(vm: _VM) -> None:
    _memo_get(vm, _py_int(vm, vm.textline(), 10, "GET index"))


def _h_binget(vm: _VM) -> None:
    _memo_get(vm, vm.read(1)[0])


def _h_long_binget(vm: _VM) -> None:
    _memo_get(vm, struct.unpack("<I", vm.read(4))[0])


def _h_put(vm: _VM) -> None:
    line = vm.textline()
    vm.top()  # load_put checks the stack before parsing the index
    _memo_put(vm, _py_int(vm, line, 10, "PUT index"))


def _h_binput(vm: _VM) -> None:
    _memo_put(vm, vm.read(1)[0])


def _h_long_binput(vm: _VM) -> None:
    _memo_put(vm, struct.unpack("<I", vm.read(4))[0])


def _h_memoize(vm: _VM) -> None:
    _memo_put(vm, len(vm.memo))


def _line_name(vm: _VM, enc: str) -> str:
    line = vm.readline()
    if not line:  # load_global/load_inst: an empty name is "pickle data was truncated"
        raise _Fatal("truncated", f"pickle data was truncated ({vm.op_name} name is empty)")
    try:
        return line.decode(enc)
    except UnicodeDecodeError:
        raise _Fatal("bad-literal", f"{vm.op_name} name is not valid {enc}") from None


def _h_global(vm: _VM) -> None:
    module = _line_name(vm, "utf-8")
    name = _line_name(vm, "utf-8")
    vm.stack.append(vm.make_global(module, name, "GLOBAL"))


def _h_stack_global(vm: _VM) -> None:
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
        raise _Fatal("stack-global", "STACK_GLOBAL requires str")
    vm.stack.append(vm.make_global(module, name, "STACK_GLOBAL"))


def _h_inst(vm: _VM) -> None:
    # load_inst pops the MARK before reading the names
    args = vm.pop_mark()
    module = _line_name(vm, "ascii")
    name = _line_name(vm, "ascii")
    cls = vm.make_global(module, name, "INST")
    vm.stack.append(vm.call(cls, vm.container("tuple", args), "INST"))


def _h_obj(vm: _VM) -> None:
    items = vm.pop_mark()
    if not items:
        raise _Fatal("underflow", "OBJ without a class")
    cls = items.pop(0)
    vm.stack.append(vm.call(cls, vm.container("tuple", items), "OBJ"))


def _h_newobj(vm: _VM) -> None:
    args = vm.pop()
    cls = vm.pop()
    vm.stack.append(vm.call(cls, args, "NEWOBJ"))


def _h_newobj_ex(vm: _VM) -> None:
    kwargs = vm.pop()
    args = vm.pop()
    cls = vm.pop()
    vm.stack.append(vm.call(cls, args, "NEWOBJ_EX", kwargs=kwargs))


def _h_reduce(vm: _VM) -> None:
    args = vm.pop()
    func = vm.pop()
    vm.stack.append(vm.call(func, args, "REDUCE"))


def _h_build(vm: _VM) -> None:
    state = vm.pop()
    inst = vm.top()
    if isinstance(inst, Opaque) or isinstance(state, Opaque):
        return
    if vm.rules.build is not None and vm.rules.build(vm, inst, state):
        return
    if isinstance(inst, Obj) and inst.kind == "extra":
        return
    if _plain(inst) and not (isinstance(inst, Container) and inst.kind == "ordereddict"):
        _build_builtin(inst, state)
        return
    ok_target = (isinstance(inst, Container) and inst.kind == "ordereddict") or (
        isinstance(inst, Obj) and inst.kind in ("namespace", "module") and not inst.built
    )
    if not ok_target:
        vm.finding(
            "build-target",
            f"BUILD on a {_typename(inst)}; torch.save only BUILDs OrderedDicts and Namespaces "
            "(BUILD calls __setstate__ or sets attributes)",
        )
        return
    if not (isinstance(state, Container) and state.kind == "dict"):
        vm.finding("build-state", f"BUILD with a {_typename(state)} state instead of a dict")
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
            raise _Fatal("bad-target", "BUILD: state is not a dictionary")
        raise _no_method(inst, "BUILD", "__dict__")
    if slots is not None:
        if not (isinstance(slots, Container) and slots.kind in ("dict", "ordereddict")):
            raise _Fatal("bad-target", "BUILD: slot state is not a dictionary")
        if slots.items:
            raise _no_method(inst, "BUILD", "settable attributes")


def _h_persid(vm: _VM) -> None:
    line = vm.readline()
    try:
        pid = line.decode("ascii")
    except UnicodeDecodeError:
        raise _Fatal("bad-literal", "persistent id is not ascii") from None
    vm.stack.append(vm.persistent(pid))


def _h_binpersid(vm: _VM) -> None:
    vm.stack.append(vm.persistent(vm.pop()))


def _ext(n: int) -> Callable[[_VM], None]:
    fmt = {1: "<B", 2: "<H", 4: "<i"}[n]

    def h(vm: _VM) -> None:
        code = struct.unpack(fmt, vm.read(n))[0]
        if code <= 0:
            raise _Fatal("bad-literal", "EXT specifies code <= 0")
        vm.finding(
            "extension",
            f"EXT{n} loads global #{code} from copyreg's extension registry, which can name "
            "any registered callable",
            name=f"<extension {code}>",
        )
        vm.stack.append(OPAQUE)

    return h


def _h_proto(vm: _VM) -> None:
    proto = vm.read(1)[0]
    if proto > 5:
        raise _Fatal("protocol", f"unsupported pickle protocol: {proto}")
    if vm.seen_proto or vm.op_off != vm.start:
        vm.finding("proto-position", "PROTO opcode that is not the first opcode")
    elif proto not in vm.rules.protocols:
        vm.finding("protocol", f"pickle protocol {proto}; {vm.rules.what} writes protocol 2")
    vm.seen_proto = True
    vm.proto = proto


def _h_frame(vm: _VM) -> None:
    # load_frame: _Unpickler_Read(frame_len), then rewind. From bytes that only checks that
    # the frame is there. From a file it fills the buffer with the frame - unless the frame
    # fits in what is left of the buffer (a FRAME inside a frame).
    n = struct.unpack("<Q", vm.read(8))[0]
    p = vm.pos
    if p < vm.fend:
        if p + n <= vm.fend:
            return
        p = vm._straddle(p)
    if p + n > vm.end:
        raise _Fatal("truncated", "FRAME longer than the remaining data")
    vm.pos = p
    vm.fend = p + n


_DISPATCH: dict[int, Callable[[_VM], Any]] = {
    _BYNAME[k]: v
    for k, v in {
        "MARK": _h_mark, "STOP": _h_stop, "POP": _h_pop, "POP_MARK": _h_pop_mark, "DUP": _h_dup,
        "FLOAT": _h_float, "INT": _h_int, "BININT": _h_binint, "BININT1": _h_binint1,
        "LONG": _h_long, "BININT2": _h_binint2, "NONE": _h_none, "PERSID": _h_persid,
        "BINPERSID": _h_binpersid, "REDUCE": _h_reduce, "STRING": _h_string,
        "BINSTRING": _h_binstring, "SHORT_BINSTRING": _h_short_binstring, "UNICODE": _h_unicode,
        "BINUNICODE": _h_binunicode, "APPEND": _h_append, "BUILD": _h_build, "GLOBAL": _h_global,
        "DICT": _h_dict, "EMPTY_DICT": _h_empty_dict, "APPENDS": _h_appends, "GET": _h_get,
        "BINGET": _h_binget, "INST": _h_inst, "LONG_BINGET": _h_long_binget, "LIST": _h_list,
        "EMPTY_LIST": _h_empty_list, "OBJ": _h_obj, "PUT": _h_put, "BINPUT": _h_binput,
        "LONG_BINPUT": _h_long_binput, "SETITEM": _h_setitem, "TUPLE": _h_tuple,
        "EMPTY_TUPLE": _h_empty_tuple, "SETITEMS": _h_setitems, "BINFLOAT": _h_binfloat,
        "PROTO": _h_proto, "NEWOBJ": _h_newobj, "EXT1": _ext(1), "EXT2": _ext(2), "EXT4": _ext(4),
        "TUPLE1": _tuple_n(1), "TUPLE2": _tuple_n(2), "TUPLE3": _tuple_n(3), "NEWTRUE": _h_true,
        "NEWFALSE": _h_false, "LONG1": _h_long1, "LONG4": _h_long4, "BINBYTES": _h_binbytes,
        "SHORT_BINBYTES": _h_short_binbytes, "SHORT_BINUNICODE": _h_short_binunicode,
        "BINUNICODE8": _h_binunicode8, "BINBYTES8": _h_binbytes8, "EMPTY_SET": _h_empty_set,
        "ADDITEMS": _h_additems, "FROZENSET": _h_frozenset, "NEWOBJ_EX": _h_newobj_ex,
        "STACK_GLOBAL": _h_stack_global, "MEMOIZE": _h_memoize, "FRAME": _h_frame,
        "BYTEARRAY8": _h_bytearray8, "NEXT_BUFFER": _h_next_buffer,
        "READONLY_BUFFER": _h_readonly_buffer,
    }.items()
}  # fmt: skip
assert set(_DISPATCH) == set(OPCODES)

# --------------------------------------------------------------------------- call checks


def _is_int(v: Any) -> bool:
    return type(v) is int


def _int_tuple(v: Any, what: str) -> list[int]:
    if not (isinstance(v, Container) and v.kind == "tuple"):
        raise _BadArgs(f"{what} is a {_typename(v)}, not a tuple of ints")
    if not all(_is_int(x) for x in v.items):
        raise _BadArgs(f"{what} holds non-integers")
    return v.items


def _empty_hooks(v: Any) -> None:
    if not (isinstance(v, Container) and v.kind == "ordereddict") or v.items:
        raise _BadArgs("backward hooks must be an empty OrderedDict")


def _check_bounds(
    vm: _VM, storage: StorageRef, itemsize: int, offset: Any, size: Any, stride: Any
) -> None:
    if not _is_int(offset):
        raise _BadArgs(f"storage offset is a {_typename(offset)}")
    sizes = _int_tuple(size, "size")
    strides = _int_tuple(stride, "stride")
    if len(sizes) != len(strides):
        raise _BadArgs(f"size {tuple(sizes)} and stride {tuple(strides)} differ in length")
    if offset < 0 or any(s < 0 for s in sizes) or any(s < 0 for s in strides):
        raise _BadArgs("negative offset, size or stride")
    if itemsize <= 0 or storage.itemsize <= 0:
        raise _BadArgs("unknown element size")
    elements = storage.elements * storage.itemsize // itemsize
    numel = 1
    for s in sizes:
        numel *= s
    if numel >= 1 << 63:
        raise _BadArgs(f"size {tuple(sizes)} overflows int64")
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
        raise _BadArgs(f"storage argument is a {_typename(v)}, not a persistent-id storage")
    return v


def _tensor(vm: _VM, kind: str = "tensor") -> Obj:
    vm.result.tensors += 1
    return Obj(kind)


def _metadata(v: Any) -> None:
    if not (isinstance(v, Container) and v.kind == "dict"):
        raise _BadArgs("tensor metadata must be a dict")
    for k, x in zip(v.items[::2], v.items[1::2], strict=True):
        if type(k) is not str or type(x) not in (bool, int, float, str):
            raise _BadArgs("tensor metadata must map str to plain values")


def _c_rebuild_tensor_v2(vm: _VM, a: list[Any]) -> Any:
    if len(a) not in (6, 7):
        raise _BadArgs(f"takes 6 or 7 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    if (
        st.type_name.split(".")[-1] in QUANTIZED_STORAGES
        or st.type_name == "torch.storage.UntypedStorage"
    ):
        raise _BadArgs(f"{st.type_name} storage in a plain tensor")
    if type(a[4]) is not bool:
        raise _BadArgs("requires_grad must be a bool")
    _empty_hooks(a[5])
    if len(a) == 7:
        _metadata(a[6])
    _check_bounds(vm, st, st.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_rebuild_tensor(vm: _VM, a: list[Any]) -> Any:
    if len(a) != 4:
        raise _BadArgs(f"takes 4 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    _check_bounds(vm, st, st.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_rebuild_tensor_v3(vm: _VM, a: list[Any]) -> Any:
    if len(a) not in (7, 8):
        raise _BadArgs(f"takes 7 or 8 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    if st.type_name != "torch.storage.UntypedStorage":
        raise _BadArgs(f"expects an UntypedStorage, got {st.type_name}")
    if type(a[4]) is not bool:
        raise _BadArgs("requires_grad must be a bool")
    _empty_hooks(a[5])
    dt = a[6]
    if not (isinstance(dt, Global) and dt.entry is not None and dt.entry.role == "dtype"):
        raise _BadArgs(f"dtype argument is a {_typename(dt)}")
    if len(a) == 8 and a[7] is not None:
        _metadata(a[7])
    _check_bounds(vm, st, dt.entry.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_rebuild_parameter(vm: _VM, a: list[Any]) -> Any:
    if len(a) != 3:
        raise _BadArgs(f"takes 3 arguments, got {len(a)}")
    if not (isinstance(a[0], Obj) and a[0].kind == "tensor"):
        raise _BadArgs(f"data is a {_typename(a[0])}, not a tensor")
    if type(a[1]) is not bool:
        raise _BadArgs("requires_grad must be a bool")
    _empty_hooks(a[2])
    return Obj("parameter")


def _c_rebuild_parameter_with_state(vm: _VM, a: list[Any]) -> Any:
    if len(a) != 4:
        raise _BadArgs(f"takes 4 arguments, got {len(a)}")
    _c_rebuild_parameter(vm, a[:3])
    st = a[3]
    if not (isinstance(st, Container) and st.kind in ("dict", "ordereddict")):
        raise _BadArgs("state must be a dict")
    for k in st.items[::2]:
        if type(k) is not str or (k.startswith("__") and k.endswith("__")):
            raise _BadArgs(f"state sets attribute {k!r}")
    return Obj("parameter")


def _c_rebuild_qtensor(vm: _VM, a: list[Any]) -> Any:
    if len(a) != 7:
        raise _BadArgs(f"takes 7 arguments, got {len(a)}")
    st = _storage_arg(a[0])
    if st.type_name.split(".")[-1] not in QUANTIZED_STORAGES:
        raise _BadArgs(f"expects a quantized storage, got {st.type_name}")
    q = a[4]
    if not (isinstance(q, Container) and q.kind == "tuple" and q.items):
        raise _BadArgs("quantizer parameters must be a tuple")
    scheme = q.items[0]
    if not (
        isinstance(scheme, Global) and scheme.entry is not None and scheme.entry.role == "qscheme"
    ):
        raise _BadArgs(f"quantization scheme is a {_typename(scheme)}")
    rest = q.items[1:]
    if scheme.name in ("per_tensor_affine", "per_tensor_symmetric"):
        if len(rest) != 2 or type(rest[0]) is not float or not _is_int(rest[1]):
            raise _BadArgs("per-tensor parameters must be (scheme, float scale, int zero_point)")
    else:
        if (
            len(rest) != 3
            or not all(isinstance(x, Obj) and x.kind == "tensor" for x in rest[:2])
            or not _is_int(rest[2])
        ):
            raise _BadArgs("per-channel parameters must be (scheme, scales, zero_points, axis)")
    if type(a[5]) is not bool:
        raise _BadArgs("requires_grad must be a bool")
    _empty_hooks(a[6])
    _check_bounds(vm, st, st.itemsize, a[1], a[2], a[3])
    return _tensor(vm)


def _c_ordereddict(vm: _VM, a: list[Any]) -> Any:
    if a:
        raise _BadArgs("torch.save creates OrderedDict() without arguments")
    return Container("ordereddict", [], 1)


def _c_counter(vm: _VM, a: list[Any]) -> Any:
    if not a:
        return Container("dict", [], 1)
    d = a[0]
    if len(a) != 1 or not (isinstance(d, Container) and d.kind == "dict"):
        raise _BadArgs("expects a single dict argument")
    if not all(_is_int(x) for x in d.items):
        raise _BadArgs("Counter keys and counts must be ints (MultiStepLR milestones)")
    return Container("dict", list(d.items), 2)


def _c_set(vm: _VM, a: list[Any]) -> Any:
    # protocol 2 pickles a set as set([items]); nn.Module keeps _non_persistent_buffers_set
    if not a:
        return Container("set", [], 1)
    items = a[0]
    if len(a) != 1 or not (isinstance(items, Container) and items.kind == "list"):
        raise _BadArgs("expects a single list argument")
    if not all(type(x) in (str, int) for x in items.items):
        raise _BadArgs("set items must be str or int")
    return Container("set", list(items.items), 2)


def _c_size(vm: _VM, a: list[Any]) -> Any:
    # torch.Size((d0, d1, ...)): a cached feature-map shape in Ultralytics' detection heads
    dims = a[0] if len(a) == 1 else None
    if not (isinstance(dims, Container) and dims.kind == "tuple"):
        raise _BadArgs("expects a single tuple of dimensions")
    if len(dims.items) > 64 or not all(_is_int(d) and 0 <= d < 1 << 62 for d in dims.items):
        raise _BadArgs("dimensions must be at most 64 non-negative ints")
    return Container("tuple", list(dims.items), 2)


def _c_namespace(vm: _VM, a: list[Any]) -> Any:
    if a:
        raise _BadArgs("Namespace is created without arguments and filled by BUILD")
    return Obj("namespace")


_CALL_CHECKS: dict[str, Callable[[_VM, list[Any]], Any]] = {
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

# --------------------------------------------------------------------------- persistent ids


class StorageTable:
    """Collects the storages named by persistent ids (one per key) for the container check."""

    def __init__(self, col: Collector, member: str | None, legacy: bool) -> None:
        self.col, self.member, self.legacy = col, member, legacy
        self.roots: dict[str, StorageRef] = {}
        self.views: dict[str, tuple[str, int, int]] = {}

    def __call__(self, pid: Any, offset: int) -> Any:
        if not (isinstance(pid, Container) and pid.kind == "tuple"):
            raise _BadArgs(f"is a {_typename(pid)}, not a ('storage', ...) tuple")
        a = pid.items
        want = 6 if self.legacy else 5
        if a and a[0] == "module" and self.legacy:
            raise _BadArgs("pickles a whole nn.Module class with its source (torch.save(model))")
        if len(a) != want or a[0] != "storage":
            raise _BadArgs(
                f"has {len(a)} items; torch.save writes ('storage', type, key, "
                f"location, numel{', view' if self.legacy else ''})"
            )
        stype, key, location, numel = a[1], a[2], a[3], a[4]
        if not (
            isinstance(stype, Global) and stype.entry is not None and stype.entry.role == "storage"
        ):
            raise _BadArgs(f"storage type is a {_typename(stype)}")
        if type(key) is not str or not key.isdigit() or len(key) > 40:
            raise _BadArgs(f"storage key {key!r} is not a decimal number")
        if type(location) is not str or not _LOCATION.match(location):
            raise _BadArgs(f"location {location!r} is not a device name")
        if not _is_int(numel) or numel < 0:
            raise _BadArgs(f"numel {numel!r} is not a non-negative int")
        ref = StorageRef(key, stype.full, stype.entry.itemsize, numel, location, offset)
        prev = self.roots.get(key)
        if prev is None:
            self.roots[key] = ref
        elif (prev.type_name, prev.numel) != (ref.type_name, ref.numel):
            raise _BadArgs(
                f"names storage {key!r} as {ref.type_name}[{numel}] after "
                f"{prev.type_name}[{prev.numel}]"
            )
        if self.legacy and a[5] is not None:
            view = a[5]
            if not (isinstance(view, Container) and view.kind == "tuple" and len(view.items) == 3):
                raise _BadArgs("view metadata must be (view_key, offset, size)")
            vkey, voff, vsize = view.items
            if type(vkey) is not str or not _is_int(voff) or not _is_int(vsize):
                raise _BadArgs("view metadata must be (str, int, int)")
            if voff < 0 or vsize < 0 or voff + vsize > numel:
                raise _BadArgs(
                    f"view {vkey!r} [{voff}:{voff + vsize}] exceeds storage {key!r} "
                    f"of {numel} elements"
                )
            return StorageRef(
                key, ref.type_name, ref.itemsize, numel, location, offset, view=(voff, vsize)
            )
        return ref


# --------------------------------------------------------------------------- entry points

HEADER_RULES = "header"


def make_rules(
    kind: str, allowlist: Allowlist, storages: StorageTable | None = None
) -> PickleRules:
    """Rules for a torch data pickle (``"torch"``), a legacy header pickle (``"header"``) or a
    pickle outside any torch container (``"plain"``: no persistent ids)."""
    if kind == HEADER_RULES:
        return PickleRules(HEADER_OPCODES, _EMPTY, None, TORCH_PROTOCOLS, "a torch.save header")
    return PickleRules(TORCH_OPCODES, allowlist, storages, TORCH_PROTOCOLS, "torch.save")


class _EmptyAllowlist(Allowlist):
    def __init__(self) -> None:
        self.entries = {}
        self.extra = []


_EMPTY = _EmptyAllowlist()


def scan_pickle(
    buf: Any,
    start: int,
    end: int,
    col: Collector,
    rules: PickleRules,
    limits: ScanLimits,
    *,
    member: str | None = None,
    base: int | None = None,
    probe: bool = False,
) -> PickleResult:
    """Scan one pickle stream starting at ``buf[start]`` (not past ``end``).

    ``buf`` is ``bytes`` or an ``mmap`` (anything with ``[i]``, slicing and ``find``).
    Offsets in findings are relative to ``base`` (default ``start``): the member start for a
    zip member, 0 for a whole file. The caller checks what follows ``result.end``.
    ``probe=True`` (for files of unknown format) stops at the first oddity other than an
    opcode or import finding, where CPython would most likely raise too.

    The stream is read like ``pickle.loads(bytes)``; when its frames make ``pickle.load(file)``
    read it differently (a ``framing`` finding), it is scanned a second time the way a file
    reader without ``peek()`` reads it (torch.load's ``BytesIO``), so what that reading would
    import is reported too (findings with ``details["reading"] = "pickle.load(file)"``).
    """
    base = start if base is None else base
    vm = _VM(buf, start, end, col, rules, limits, member, base)
    vm.probe = probe
    res = vm.run()
    if vm.diverged is not None and not probe:
        other = _VM(buf, start, end, col, rules, limits, member, base, reading="file")
        for g in other.run().globals:
            if g not in res.globals:
                res.globals.append(g)
    return res


__all__ = [
    "OPCODES",
    "TORCH_OPCODES",
    "HEADER_OPCODES",
    "PickleRules",
    "PickleResult",
    "StorageRef",
    "StorageTable",
    "make_rules",
    "scan_pickle",
    "Global",
    "Container",
    "Obj",
    "Blob",
]
