"""The symbolic stack machine: how it reads the stream (bytes or file, across FRAMEs), its
stack, MARKs and memo, the main loop, and what imports, calls and persistent ids do.
Opcode handlers are in :mod:`.stack`, :mod:`.literals`, :mod:`.structures` and
:mod:`.imports`; the entry point is :func:`scan_pickle`.
"""

from __future__ import annotations

import _compat_pickle
from dataclasses import dataclass, field
from typing import Any

from ..report import UNVERIFIABLE, Collector, ScanLimits
from .call_checks import CALL_CHECKS
from .dispatch import DISPATCH
from .errors import BadArgs, Fatal
from .opcodes import OPCODES
from .rules import PickleRules
from .values import OPAQUE, Blob, Container, Global, Obj, Opaque, depth_of, is_plain, typename


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


_PROBE_TOLERATED = frozenset({"opcode", "disallowed-global", "protocol", "extension"})


# findings that mean CPython calls a method of an object the stream built
_CALLING = frozenset({"append-target", "setitem-target", "additems-target", "build-target"})


_BIG_LITERAL = 1 << 16  # literals longer than this are kept as Blob(size)


class VM:
    """One reading of one pickle stream: the machine's state and the operations its opcode
    handlers use (read, push and pop, imports, calls, findings)."""

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
            raise Fatal(code, why)
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
    # crosses the end of a frame reads different bytes in the two cases: ``straddle``.
    def straddle(self, p: int) -> int:
        if self.diverged is None:
            self.diverged = self.op_off
        return self.fend if self.reading == "file" else p

    def read(self, n: int) -> bytes:
        p = self.pos
        if p < self.fend < p + n:
            p = self.straddle(p)
        if n < 0 or p + n > self.end:
            raise Fatal("truncated", f"pickle data was truncated ({self.op_name} needs {n} bytes)")
        self.pos = p + n
        return self.buf[p : p + n]

    def read_into(self, n: int) -> bytes:
        """_Unpickler_ReadInto (BINBYTES*, BYTEARRAY8): takes what is left of the buffer, then
        reads on from the file, so bytes and file readings agree."""
        p = self.pos
        if n < 0 or p + n > self.end:
            raise Fatal("truncated", f"pickle data was truncated ({self.op_name} needs {n} bytes)")
        self.pos = p + n
        return self.buf[p : p + n]

    def readline(self) -> bytes:
        p = self.pos
        i = self.buf.find(b"\n", p, self.end)
        if p < self.fend and not p <= i < self.fend:
            p = self.straddle(p)
            if p != self.pos:
                i = self.buf.find(b"\n", p, self.end)
        if i < 0:
            # _pickle.c (3.11) raises "pickle data was truncated" here, bytes or file input
            raise Fatal("truncated", f"pickle data was truncated ({self.op_name} needs a newline)")
        if i - p > self.limits.max_string:
            raise self.limit("max_string", i - p)
        line = self.buf[p:i]
        self.pos = i + 1
        return line

    def textline(self) -> bytes:
        """A line for INT/LONG/FLOAT/GET/PUT, which _pickle.c parses as a C string: it ends at
        the first NUL, and an empty line is "pickle data was truncated"."""
        line = self.readline()
        if not line:
            raise Fatal("truncated", f"pickle data was truncated ({self.op_name} line is empty)")
        nul = line.find(b"\x00")
        return line if nul < 0 else line[:nul]

    def limit(self, which: str, value: int) -> Fatal:
        return Fatal(
            "limit-" + which.replace("_", "-"),
            f"resource limit exceeded: {which}={getattr(self.limits, which)} (got {value})",
            check="security.limits",
        )

    def sized(self, n: int, into: bool = False) -> bytes | Blob:
        if n > self.limits.max_string:
            raise self.limit("max_string", n)
        data = self.read_into(n) if into else self.read(n)
        return Blob(n) if n > _BIG_LITERAL else data

    # ---- stack
    def pop(self) -> Any:
        if not self.stack:  # the C stack's "fence": nothing above the top MARK
            raise Fatal("underflow", "unpickling stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise Fatal("underflow", "unpickling stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise Fatal("no-mark", "could not find MARK")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def container(self, kind: str, items: list[Any]) -> Container:
        d = 1 + max((depth_of(x) for x in items), default=0)
        if d > self.limits.max_depth:
            raise self.limit("max_depth", d)
        return Container(kind, items, d)

    def grow(self, c: Container, items: list[Any]) -> None:
        c.items.extend(items)
        d = 1 + max((depth_of(x) for x in items), default=0)
        if d > c.depth:
            if d > self.limits.max_depth:
                raise self.limit("max_depth", d)
            c.depth = d

    # ---- main loop
    def run(self) -> PickleResult:
        res = self.result
        try:
            self._loop()
        except Fatal as e:
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
        dispatch = DISPATCH
        ops = 0
        max_ops = limits.max_ops
        while True:
            p = self.pos
            if p >= self.end:
                self.op_off = p
                self.op_name = ""
                raise Fatal("truncated", "pickle ended before STOP")
            code = buf[p]
            self.op_off = p
            self.pos = p + 1
            ops += 1
            if ops > max_ops:
                self.result.ops = ops
                raise self.limit("max_ops", ops)
            name = OPCODES.get(code)
            if name is None:
                self.op_name = f"0x{code:02x}"
                raise Fatal("bad-opcode", f"invalid opcode byte 0x{code:02x}", verdict=UNVERIFIABLE)
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
        if is_plain(func):  # built-ins are not callable, and not types for NEWOBJ
            raise Fatal("bad-target", f"{how} calls a {typename(func)}, which is not callable")
        if is_plain(args) and not (isinstance(args, Container) and args.kind == "tuple"):
            raise Fatal("bad-target", f"{how} arguments are a {typename(args)}, not a tuple")
        bad_kwargs = not (isinstance(kwargs, Container) and kwargs.kind == "dict")
        if newobj and kwargs is not None and is_plain(kwargs) and bad_kwargs:
            raise Fatal("bad-target", f"{how} kwargs are a {typename(kwargs)}, not a dict")
        if not isinstance(func, Global):
            self.finding(
                "call-non-global",
                f"{how} calls a {typename(func)} object; torch.save only calls allow-listed globals",
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
                f"{how} of {func.full} with a {typename(args)} instead of a tuple",
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
        check = self.rules.calls.get(func.full) or CALL_CHECKS.get(func.full)
        if check is None:  # pragma: no cover - every call/class entry has a check
            return OPAQUE
        try:
            return check(self, args.items)
        except BadArgs as e:
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
        except BadArgs as e:
            self.finding("persistent-id", f"persistent id {e}", check="security.tensor")
            return OPAQUE


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
    vm = VM(buf, start, end, col, rules, limits, member, base)
    vm.probe = probe
    res = vm.run()
    if vm.diverged is not None and not probe:
        other = VM(buf, start, end, col, rules, limits, member, base, reading="file")
        for g in other.run().globals:
            if g not in res.globals:
                res.globals.append(g)
    return res
