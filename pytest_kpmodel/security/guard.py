"""Runtime guard: record and block network, process and file-write activity of model code.

Built on PEP 578 audit hooks (``sys.addaudithook``). An audit hook cannot be removed once
added, so this module installs exactly one per process (on first use) and that hook consults
the guards active in the *current context* (a ``ContextVar``, so asyncio tasks inherit them);
when no guard is active anywhere it returns after two dict checks.

Usage (the plugin wraps model loading and every predict call)::

    guard = RuntimeGuard(network=False, subprocess=False, writes=False,
                         allowed_write_dirs=[run_tmp_dir])
    with guard.active():
        model = load(...)
    with guard.active():
        out = model.predict(images)
    guard.events        # list[GuardEvent]: every relevant event, allowed or blocked
    guard.violations    # the blocked ones
    guard.findings()    # list[Finding] (check "security.runtime"), for CheckResult

A forbidden event raises :class:`GuardViolation` (a ``PermissionError`` and a
``KpModelError``) from inside the offending call, so the socket never connects, the process
never starts, the file is never opened for writing. The event is recorded (name, arguments,
the Python stack trimmed to non-stdlib, non-torch frames) even if the model swallows the
exception, so ``guard.violations`` is the verdict, not the exception.

Policy (``False`` = forbidden):

``network``     ``socket.connect/bind/sendto/sendmsg``, DNS (``socket.getaddrinfo``,
                ``gethostbyname``, ``gethostbyaddr``, ``getnameinfo``), ``urllib.Request``,
                ``http.client.connect`` and the other stdlib clients, ``webbrowser.open``.
                Unix-domain sockets count as network.
``subprocess``  ``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.posix_spawn``,
                ``os.spawn*``, ``os.fork``/``forkpty``, ``pty.spawn``, ``os.kill``/``killpg``.
``writes``      ``open`` with a write/append/create/truncate mode or flags, ``os.remove``,
                ``rmdir``, ``rename``/``replace``, ``mkdir``, ``link``, ``symlink``,
                ``truncate``, ``chmod``, ``chown``, ``utime``, ``setxattr``/``removexattr``,
                ``shutil.*`` copy/move/rmtree/archive events, ``tempfile.mkstemp/mkdtemp``,
                ``sqlite3.connect`` on a file, writable ``mmap`` of a file - outside
                ``allowed_write_dirs`` (paths are resolved with ``realpath``, ``dir_fd``
                via ``/proc/self/fd``). Opening a bare file descriptor for writing is
                treated as outside (its target is unknown).
``ctypes``      ``ctypes.dlopen``/``dlsym`` (loading native code and looking up symbols),
                ``ctypes.cdata`` from raw addresses, ``ctypes.PyObj_FromPtr``,
                ``string_at``/``wstring_at``, ``ctypes.call_function`` (where CPython raises
                it), ``sqlite3.load_extension``.
``inherit_threads``  threads that start while a guard is active (found by comparing
                ``sys._current_frames()`` before and after) are guarded too, for their whole
                life, since Python 3.11 raises no audit event when a thread starts.

What audit hooks cannot see (this is not a sandbox):

* native code: C/C++ extensions and custom ops doing their own I/O (``open(2)``,
  ``connect(2)``, ``fork(2)``) - including torch's own C++ readers and CUDA libraries;
* ``ctypes``/``cffi`` calls into libc: we see ``dlopen``/``dlsym`` (blocked by default), but
  the foreign call itself raises no event in CPython 3.11, so a function pointer obtained
  before the guard (``ctypes.CDLL(None).system`` looked up at import time), or via cffi,
  calls ``connect``/``system`` invisibly;
* already-open file descriptors and sockets: ``os.write(fd, ...)``, ``sock.send(...)`` on a
  connected socket, writes through a file object opened before the guard raise no event;
  ``multiprocessing``'s spawn/forkserver start methods exec through
  ``_posixsubprocess.fork_exec`` without an event (the pipe they open for writing is seen);
* anything after the guard exits, except in threads it started;
* pre-existing threads (thread pools created before the guard) running model code;
* hostile Python in the same process can disable the guard (it can reach this module's state
  via ``gc`` or ``sys.modules``); the guard catches what well-meaning or sloppy code does and
  makes a naive payload fail loudly - for untrusted code use a container or VM without
  network and a read-only filesystem;
* time-of-check/time-of-use: a path's symlinks are resolved when the event fires.

Bytecode caching by importlib (``__pycache__/*.pyc`` writes while model code is imported) is
blocked - no cache poisoning - but not recorded, so importing a model module is not a finding.
"""

from __future__ import annotations

import _thread
import contextlib
import contextvars
import os
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import KpModelError
from ..findings import Finding

T = TypeVar("T")

NETWORK, SUBPROCESS, WRITE, CTYPES = "network", "subprocess", "write", "ctypes"


class GuardViolation(KpModelError, PermissionError):
    """Raised inside model code when the active guard forbids what it is doing."""

    def __init__(self, event: GuardEvent) -> None:
        self.event = event
        super().__init__(event.describe())


@dataclass
class GuardEvent:
    event: str  # audit event name, e.g. "socket.connect"
    category: str  # network | subprocess | write | ctypes
    args: tuple[str, ...]  # reprs, truncated
    blocked: bool
    reason: str
    stack: list[str] = field(default_factory=list)  # "file:line in func", innermost last
    thread: str = ""

    def describe(self) -> str:
        where = f" at {self.stack[-1]}" if self.stack else ""
        verb = "blocked" if self.blocked else "recorded"
        return (
            f"{verb} {self.category}: {self.event}({', '.join(self.args)}){where} - {self.reason}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "category": self.category,
            "args": list(self.args),
            "blocked": self.blocked,
            "reason": self.reason,
            "stack": list(self.stack),
            "thread": self.thread,
        }


# --------------------------------------------------------------------------- policy object


class RuntimeGuard:
    """One policy; activate it with ``with guard.active():`` (re-entrant, nestable: the
    effective policy is the most restrictive of all active guards, each records the event)."""

    def __init__(
        self,
        network: bool = False,
        subprocess: bool = False,
        writes: bool = False,
        allowed_write_dirs: Iterable[str | os.PathLike[str]] = (),
        *,
        ctypes: bool = False,
        inherit_threads: bool = True,
        name: str = "model",
        max_events: int = 1000,
    ) -> None:
        self.allow = {NETWORK: network, SUBPROCESS: subprocess, WRITE: writes, CTYPES: ctypes}
        self.allowed_write_dirs = [os.path.realpath(os.fspath(d)) for d in allowed_write_dirs]
        self.inherit_threads = inherit_threads
        self.name = name
        self.max_events = max_events
        self.events: list[GuardEvent] = []
        self.dropped = 0
        self._pre_threads: frozenset[int] = frozenset()
        self._depth = 0

    @property
    def violations(self) -> list[GuardEvent]:
        return [e for e in self.events if e.blocked]

    @contextlib.contextmanager
    def active(self) -> Iterator[RuntimeGuard]:
        install()
        token = _ACTIVE.set(_ACTIVE.get() + (self,))
        with _LOCK:
            if self._depth == 0:
                self._pre_threads = frozenset(_thread_idents())
            self._depth += 1
            _LIVE[id(self)] = self
        try:
            yield self
        finally:
            _ACTIVE.reset(token)
            with _LOCK:
                self._depth -= 1
                if self._depth == 0:
                    _LIVE.pop(id(self), None)
                    if self.inherit_threads:
                        me = _thread.get_ident()
                        alive = _thread_idents()
                        for ident in alive - self._pre_threads - {me}:
                            _INHERITED[ident] = _INHERITED.get(ident, ()) + (self,)
                        for ident in list(_INHERITED):
                            if ident not in alive:
                                del _INHERITED[ident]

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with this guard active."""
        with self.active():
            return fn(*args, **kwargs)

    def raise_for_violations(self) -> None:
        """Raise the first violation (for callers that swallow exceptions in model code)."""
        v = self.violations
        if v:
            raise GuardViolation(v[0])

    def findings(self) -> list[Finding]:
        out = []
        for e in self.events:
            out.append(
                Finding(
                    "security.runtime",
                    f"{self.name}: {e.describe()}",
                    "fail" if e.blocked else "info",
                    e.to_json(),
                )
            )
        if self.dropped:
            out.append(
                Finding(
                    "security.runtime",
                    f"{self.name}: {self.dropped} more events not recorded",
                    "info",
                    {},
                )
            )
        return out

    # ---- decisions (called from the hook)
    def _write_allowed(self, path: Any, dir_fd: Any = None) -> bool:
        if not self.allowed_write_dirs:
            return False
        full = _resolve(path, dir_fd)
        if full is None:
            return False
        return any(
            full == d or full.startswith(d.rstrip(os.sep) + os.sep) for d in self.allowed_write_dirs
        )

    def _record(self, ev: GuardEvent) -> None:
        if len(self.events) < self.max_events:
            self.events.append(ev)
        else:
            self.dropped += 1


def _resolve(path: Any, dir_fd: Any = None) -> str | None:
    if isinstance(path, int) or path is None:
        return None  # a bare file descriptor: target unknown
    try:
        p = os.fsdecode(path)
    except TypeError:
        return None
    if not os.path.isabs(p) and isinstance(dir_fd, int) and dir_fd >= 0:
        try:
            p = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), p)
        except OSError:
            return None
    return os.path.realpath(p)


# --------------------------------------------------------------------------- event table
# event -> (category, function(args) -> list of (path, dir_fd) for writes, or None)


def _write_mode(args: tuple[Any, ...]) -> bool:
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    wr = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    return isinstance(flags, int) and bool(flags & wr)


def _p(i: int, fd: int | None = None) -> Callable[[tuple[Any, ...]], list[tuple[Any, Any]]]:
    def get(a: tuple[Any, ...]) -> list[tuple[Any, Any]]:
        return [(a[i] if len(a) > i else None, a[fd] if fd is not None and len(a) > fd else None)]

    return get


def _both(a: tuple[Any, ...]) -> list[tuple[Any, Any]]:
    return [(a[0], a[2] if len(a) > 2 else None), (a[1], a[3] if len(a) > 3 else None)]


def _mmap_paths(a: tuple[Any, ...]) -> list[tuple[Any, Any]] | None:
    import mmap

    fileno, _length, access = a[0], a[1], a[2]
    if fileno == -1 or access in (mmap.ACCESS_READ, mmap.ACCESS_COPY):
        return None
    try:
        return [(os.readlink(f"/proc/self/fd/{fileno}"), None)]
    except OSError:
        return [(fileno, None)]


def _sqlite(a: tuple[Any, ...]) -> list[tuple[Any, Any]] | None:
    db = a[0] if a else None
    if db in (":memory:", b":memory:", "") or (isinstance(db, str) and "mode=memory" in db):
        return None
    return [(db, None)]


_WRITE_EVENTS: dict[str, Callable[[tuple[Any, ...]], list[tuple[Any, Any]] | None]] = {
    "open": lambda a: [(a[0], None)] if _write_mode(a) else None,
    "os.remove": _p(0, 1),
    "os.rmdir": _p(0, 1),
    "os.mkdir": _p(0, 2),
    "os.chmod": _p(0, 2),
    "os.chown": _p(0, 3),
    "os.utime": _p(0, 3),
    "os.truncate": _p(0),
    "os.chflags": _p(0),
    "os.setxattr": _p(0),
    "os.removexattr": _p(0),
    "os.rename": _both,
    "os.link": _both,
    "os.symlink": lambda a: [(a[1], a[2] if len(a) > 2 else None)],
    "shutil.copyfile": lambda a: [(a[1], None)],
    "shutil.copymode": lambda a: [(a[1], None)],
    "shutil.copystat": lambda a: [(a[1], None)],
    "shutil.copytree": lambda a: [(a[1], None)],
    "shutil.move": lambda a: [(a[0], None), (a[1], None)],
    "shutil.rmtree": _p(0, 1),
    "shutil.chown": _p(0),
    "shutil.make_archive": lambda a: [(a[0], None)],
    "shutil.unpack_archive": lambda a: [(a[1], None)],
    "tempfile.mkstemp": _p(0),
    "tempfile.mkdtemp": _p(0),
    "sqlite3.connect": _sqlite,
    "mmap.__new__": _mmap_paths,
}
_NETWORK_EVENTS = frozenset(
    [
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sethostname",
        "urllib.Request",
        "http.client.connect",
        "http.client.send",
        "ftplib.connect",
        "smtplib.connect",
        "poplib.connect",
        "imaplib.open",
        "nntplib.connect",
        "telnetlib.Telnet.open",
        "webbrowser.open",
    ]
)
_SUBPROCESS_EVENTS = frozenset(
    [
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
        "os.kill",
        "os.killpg",
        "os.startfile",
    ]
)
_CTYPES_EVENTS = frozenset(
    [
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.PyObj_FromPtr",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "sqlite3.load_extension",
        "sqlite3.enable_load_extension",
    ]
)
_CATEGORY: dict[str, str] = {
    **{e: NETWORK for e in _NETWORK_EVENTS},
    **{e: SUBPROCESS for e in _SUBPROCESS_EVENTS},
    **{e: CTYPES for e in _CTYPES_EVENTS},
    **{e: WRITE for e in _WRITE_EVENTS},
}

# --------------------------------------------------------------------------- the hook

_ACTIVE: contextvars.ContextVar[tuple[RuntimeGuard, ...]] = contextvars.ContextVar(
    "pytest_kpmodel_guard", default=()
)
_LIVE: dict[int, RuntimeGuard] = {}  # guards active in some context right now
_INHERITED: dict[int, tuple[RuntimeGuard, ...]] = {}  # thread ident -> guards it inherited
_LOCK = threading.Lock()
_TLS = threading.local()
_INSTALLED = False
_HERE = os.path.dirname(os.path.abspath(__file__))
_STDLIB = tuple({os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")})
_NOISE = tuple(
    os.sep + d + os.sep for d in ("torch", "torchvision", "_pytest", "pluggy", "pytest_kpmodel")
)


def _thread_idents() -> set[int]:
    return set(sys._current_frames())


def install() -> None:
    """Install the process-wide audit hook (idempotent; cannot be undone - by design)."""
    global _INSTALLED
    with _LOCK:
        if not _INSTALLED:
            sys.addaudithook(_hook)
            _INSTALLED = True


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _LIVE and not _INHERITED:
        return
    category = _CATEGORY.get(event)
    if category is None:
        return
    if getattr(_TLS, "busy", False):
        return
    guards = _ACTIVE.get()
    if not guards:
        ident = _thread.get_ident()
        guards = _INHERITED.get(ident, ())
        if not guards:
            guards = tuple(
                g for g in list(_LIVE.values()) if g.inherit_threads and ident not in g._pre_threads
            )
            if not guards:
                return
            with _LOCK:
                _INHERITED[ident] = guards
    _TLS.busy = True
    try:
        violation = _decide(event, category, args, guards)
    finally:
        _TLS.busy = False
    if violation is not None:
        raise GuardViolation(violation)


def _decide(
    event: str, category: str, args: tuple[Any, ...], guards: tuple[RuntimeGuard, ...]
) -> GuardEvent | None:
    paths: list[tuple[Any, Any]] | None = None
    if category == WRITE:
        paths = _WRITE_EVENTS[event](args)
        if paths is None:  # a read-only open, an in-memory database...
            return None
        # writes inside every active guard's allowed directories are routine: not recorded
        if all(all(g._write_allowed(p, fd) for p, fd in paths) for g in guards):
            return None
    blocked_by: RuntimeGuard | None = None
    reason = f"{category} allowed by policy"
    for g in guards:
        if g.allow[category]:
            continue
        if category == WRITE and paths is not None:
            if all(g._write_allowed(p, fd) for p, fd in paths):
                continue
            dirs = ", ".join(g.allowed_write_dirs) or "none"
            reason = f"write outside the allowed directories ({dirs})"
        else:
            reason = f"{category} is forbidden by the {g.name} guard"
        blocked_by = g
        break
    if blocked_by is not None and category == WRITE and _bytecode_cache_write(paths or []):
        # importlib caching a module's bytecode: blocked (no .pyc poisoning) but not recorded;
        # importlib ignores the OSError and imports from source
        return GuardEvent(event, category, (), True, "bytecode cache write")
    ident = _thread.get_ident()
    thread = threading._active.get(ident)
    ev = GuardEvent(
        event=event,
        category=category,
        args=tuple(_short(a) for a in args[:4]),
        blocked=blocked_by is not None,
        reason=reason,
        stack=_stack(),
        thread=thread.name if thread is not None else str(ident),
    )
    for g in guards:
        g._record(ev)
    return ev if ev.blocked else None


def _bytecode_cache_write(paths: list[tuple[Any, Any]]) -> bool:
    caller = sys._getframe(3)  # _bytecode_cache_write <- _decide <- _hook <- caller
    if not (
        caller.f_code.co_filename.startswith("<frozen importlib._bootstrap_external")
        and caller.f_code.co_name in ("set_data", "_write_atomic")
    ):
        return False
    for p, _fd in paths:
        try:
            parts = os.fsdecode(p).split(os.sep)
        except TypeError:
            return False
        if "__pycache__" not in parts[-2:]:
            return False
    return True


def _short(a: Any) -> str:
    try:
        r = repr(a)
    except Exception:
        r = f"<{type(a).__name__}>"
    return r if len(r) <= 120 else r[:117] + "..."


def _is_noise(filename: str) -> bool:
    if filename.startswith("<"):
        return True
    if filename.startswith(_HERE):
        return True
    if (
        "site-packages" not in filename
        and "dist-packages" not in filename
        and (filename.startswith(_STDLIB))
    ):
        return True
    return any(n in filename for n in _NOISE)


def _stack(limit: int = 8) -> list[str]:
    frames = []
    f = sys._getframe(3)
    while f is not None:
        co = f.f_code
        frames.append((co.co_filename, f.f_lineno, co.co_name))
        f = f.f_back
    frames.reverse()  # outermost first
    user = [fr for fr in frames if not _is_noise(fr[0])]
    keep = user[-limit:] if user else frames[-5:]
    return [f"{fn}:{ln} in {name}" for fn, ln, name in keep]


__all__ = ["RuntimeGuard", "GuardEvent", "GuardViolation", "install"]
