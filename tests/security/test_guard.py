"""The runtime guard: a ``python``-format model's network, subprocess and write attempts (in
forward, at import time and at load time) are recorded and blocked; inactive guards cost
nothing and change nothing."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pytest_kpmodel.security import GuardViolation, RuntimeGuard

MODEL_SRC = textwrap.dedent(
    """
    import os, socket, subprocess, threading
    import torch

    MODE = {mode!r}
    MARKER = {marker!r}
    PORT = {port}

    def side_effect(where):
        if MODE == "socket":
            s = socket.socket()
            try:
                s.connect(("127.0.0.1", PORT))
            finally:
                s.close()
        elif MODE == "subprocess":
            subprocess.run(["touch", MARKER], check=False)
        elif MODE == "system":
            os.system("touch " + MARKER)
        elif MODE == "write":
            with open(MARKER, "w") as f:
                f.write(where)
        elif MODE == "swallow":
            try:
                open(MARKER, "w").close()
            except Exception:
                pass
        elif MODE == "thread":
            def work():
                try:
                    open(MARKER, "w").close()
                except Exception:
                    pass
            t = threading.Thread(target=work)
            t.start()
            t.join()

    if {at_import}:
        side_effect("import")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            side_effect("forward")
            return self.conv(x)

    def factory():
        if {at_load}:
            side_effect("load")
        return Net()
    """
)


@pytest.fixture
def server():
    """A listening socket on 127.0.0.1: a connect that got through would be accepted."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    s.setblocking(False)
    yield s
    s.close()


def _write_model(
    tmp_path: Path,
    mode: str,
    marker: Path,
    port: int = 9,
    at_import: bool = False,
    at_load: bool = False,
) -> Path:
    src = MODEL_SRC.format(
        mode=mode, marker=str(marker), port=port, at_import=at_import, at_load=at_load
    )
    name = f"kp_user_model_{mode}_{int(at_import)}{int(at_load)}_{time.monotonic_ns()}"
    p = tmp_path / f"{name}.py"
    p.write_text(src)
    return p


def _import(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(path.stem, None)
        raise
    return mod


def _guard(tmp_path: Path, **kw) -> RuntimeGuard:  # type: ignore[no-untyped-def]
    allowed = tmp_path / "allowed"
    allowed.mkdir(exist_ok=True)
    return RuntimeGuard(allowed_write_dirs=[allowed], **kw)


@pytest.mark.parametrize("mode", ["socket", "subprocess", "system", "write"])
def test_forward_side_effects_blocked(tmp_path: Path, server, mode: str) -> None:
    import torch

    marker = tmp_path / "marker"
    mod = _import(_write_model(tmp_path, mode, marker, port=server.getsockname()[1]))
    guard = _guard(tmp_path)
    with guard.active():
        model = mod.factory()
    assert not guard.events
    with guard.active(), pytest.raises(GuardViolation) as exc, torch.inference_mode():
        model(torch.zeros(1, 3, 8, 8))
    assert exc.value.event.blocked
    (ev,) = guard.violations
    assert ev.category == {"socket": "network", "write": "write"}.get(mode, "subprocess")
    assert any("side_effect" in frame for frame in ev.stack), ev.stack
    assert any(mod.__file__ in frame for frame in ev.stack)
    assert not marker.exists()
    with pytest.raises(BlockingIOError):
        server.accept()  # nothing ever connected
    findings = guard.findings()
    assert findings and findings[0].severity == "fail" and findings[0].check == "security.runtime"


def test_import_time_side_effect_blocked(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = _write_model(tmp_path, "write", marker, at_import=True)
    guard = _guard(tmp_path)
    with guard.active(), pytest.raises(GuardViolation):
        _import(path)
    assert not marker.exists()
    assert guard.violations[0].event == "open"


def test_load_time_side_effect_blocked(tmp_path: Path, server) -> None:
    marker = tmp_path / "marker"
    mod = _import(
        _write_model(tmp_path, "socket", marker, port=server.getsockname()[1], at_load=True)
    )
    guard = _guard(tmp_path)
    with guard.active(), pytest.raises(GuardViolation):
        mod.factory()
    assert guard.violations[0].event == "socket.connect"


def test_swallowed_violation_still_recorded(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "marker"
    mod = _import(_write_model(tmp_path, "swallow", marker))
    guard = _guard(tmp_path)
    with guard.active():
        mod.factory()(torch.zeros(1, 3, 8, 8))  # no exception escapes the model
    assert not marker.exists()
    assert len(guard.violations) == 1
    with pytest.raises(GuardViolation):
        guard.raise_for_violations()


def test_threads_started_inside_inherit_the_guard(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "marker"
    mod = _import(_write_model(tmp_path, "thread", marker))
    guard = _guard(tmp_path)
    with guard.active():
        mod.factory()(torch.zeros(1, 3, 8, 8))
    assert not marker.exists()
    assert guard.violations and guard.violations[0].category == "write"


def test_policy_allows_what_it_allows(tmp_path: Path, server) -> None:
    guard = _guard(tmp_path, network=True)
    allowed = tmp_path / "allowed" / "ok.txt"
    with guard.active():
        allowed.write_text("fine")  # inside allowed_write_dirs: not even recorded
        c = socket.create_connection(server.getsockname())
        c.close()
    assert allowed.read_text() == "fine"
    assert "socket.connect" in [e.event for e in guard.events]
    assert not guard.violations


@pytest.mark.parametrize(
    "action",
    [
        lambda p: os.rename(p / "allowed" / "a", p / "moved"),
        lambda p: (
            os.symlink(p / "outside", p / "allowed" / "link")
            or open(p / "allowed" / "link", "a").close()
        ),  # noqa: SIM115
        lambda p: __import__("shutil").copy(p / "allowed" / "a", p / "copy"),
        lambda p: os.mkdir(p / "newdir"),
        lambda p: os.remove(p / "outside"),
        lambda p: os.close(os.open(p / "created", os.O_WRONLY | os.O_CREAT)),
        lambda p: socket.getaddrinfo("localhost", 80),
        lambda p: __import__("ctypes").CDLL("libc.so.6"),
        lambda p: os.fork() == 0 and os._exit(0),  # (a child would exit at once)
    ],
    ids=[
        "rename-out",
        "symlink-escape",
        "shutil-copy",
        "mkdir",
        "remove",
        "os-open",
        "dns",
        "ctypes",
        "fork",
    ],
)
def test_more_events_blocked(tmp_path: Path, action) -> None:  # type: ignore[no-untyped-def]
    guard = _guard(tmp_path)
    (tmp_path / "allowed" / "a").write_text("a")
    (tmp_path / "outside").write_text("o")
    with guard.active(), pytest.raises(GuardViolation):
        action(tmp_path)
    assert guard.violations
    assert (tmp_path / "outside").exists() and not (tmp_path / "moved").exists()
    assert not (tmp_path / "copy").exists() and not (tmp_path / "created").exists()


def test_inactive_guard_changes_nothing(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    with guard.active():
        pass
    p = tmp_path / "after.txt"
    p.write_text("x")  # the hook stays installed but no guard is active
    assert p.exists() and not guard.events


def test_other_threads_unaffected(tmp_path: Path) -> None:
    """A thread that existed before the guard is not guarded by it."""
    done = threading.Event()
    go = threading.Event()
    errors: list[BaseException] = []

    def bystander() -> None:
        go.wait(10)
        try:
            (tmp_path / "bystander.txt").write_text("x")
        except BaseException as e:  # pragma: no cover - would be the failure
            errors.append(e)
        done.set()

    t = threading.Thread(target=bystander)
    t.start()
    guard = _guard(tmp_path)
    with guard.active():
        go.set()
        done.wait(10)
    t.join()
    assert not errors and (tmp_path / "bystander.txt").exists()


def test_safe_loading_and_inference_raise_no_events(tmp_path: Path) -> None:
    """torch.load(weights_only=True, mmap) and a forward pass are clean under the guard."""
    import torch
    from sec_payloads import torch_zip_bytes

    from pytest_kpmodel.security import load_state_dict_safely

    p = tmp_path / "allowed" / "w.pt"
    guard = _guard(tmp_path)
    p.write_bytes(torch_zip_bytes())
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    with guard.active():
        sd = load_state_dict_safely(p, mmap=True)
        with torch.inference_mode():
            net(torch.zeros(1, 3, 8, 8))
    assert sd and not guard.events


def test_hook_is_cheap_when_inactive(tmp_path: Path) -> None:
    from pytest_kpmodel.security import guard as guard_mod

    guard_mod.install()
    t0 = time.perf_counter()
    for _ in range(20000):
        guard_mod._hook("open", ("x", "w", 0))
    per_call = (time.perf_counter() - t0) / 20000
    assert per_call < 5e-6


def test_writes_allowed_by_policy_are_recorded(tmp_path: Path) -> None:
    guard = _guard(tmp_path, writes=True)
    with guard.active():
        (tmp_path / "outside.txt").write_text("x")
        (tmp_path / "allowed" / "inside.txt").write_text("x")
    assert (tmp_path / "outside.txt").exists()
    (ev,) = guard.events
    assert ev.event == "open" and not ev.blocked and "outside.txt" in ev.args[0]
    assert guard.findings()[0].severity == "info"


def test_bytecode_cache_writes_blocked_silently(tmp_path: Path, monkeypatch) -> None:
    """Importing model code would write __pycache__/*.pyc: blocked, but not a finding."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    marker = tmp_path / "unused"
    path = _write_model(tmp_path, "none", marker)
    guard = _guard(tmp_path)
    with guard.active():
        mod = _import(path)
    assert mod.factory is not None
    assert not guard.events
    assert not (tmp_path / "__pycache__").exists()
