"""Progress of the long steps (predicting, parity variants, the corruption sweep, benchmark
rounds): one line saying what runs (``kpmodel: predicting 200 images with kp-tiny-mod on cpu``)
and a tqdm bar under it, on a terminal only.

Feature modules open a step and call it with the work done::

    with progress.step("predicting 200 images with kp-tiny-mod on cpu", total=200) as bar:
        ...
        bar(len(batch))

Whether anything is shown is decided once per run by ``plugin.py`` (``configure``): quiet under
``-q`` and when stderr is not a terminal (CI logs stay clean); ``KPMODEL_PROGRESS=1`` shows it
without a terminal too (not under ``-q``), ``KPMODEL_PROGRESS=0`` never. Under pytest the output capture is suspended around
each write (``suspend``), else the bar would land in the captured output of the test that
happens to need the step. Without the plugin (a script using the package) the same rule reads
``sys.stderr`` when a step opens. Nothing here imports torch or pytest; tqdm is imported only
when a bar is really shown.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

ENV = "KPMODEL_PROGRESS"
_ON = {"1", "true", "yes", "on", "always"}
_OFF = {"0", "false", "no", "off", "never"}
PREFIX = "kpmodel: "


def decide(verbosity: int, isatty: bool, env: str | None = None) -> bool:
    """Show progress? Never under ``-q`` or ``KPMODEL_PROGRESS=0``; on a terminal, or without
    one with ``KPMODEL_PROGRESS=1``."""
    value = (env or "").strip().lower()
    if verbosity < 0 or value in _OFF:
        return False
    return isatty or value in _ON


@dataclass
class _State:
    enabled: bool | None = None  # None: not configured (no plugin): decide per step
    suspend: Callable[[], AbstractContextManager[Any]] | None = None  # pytest's capture, off


_STATE = _State()


def configure(
    *,
    verbosity: int,
    isatty: bool,
    suspend: Callable[[], AbstractContextManager[Any]] | None = None,
) -> bool:
    """Called by ``plugin.py`` at configure: pytest's verbosity, whether stderr is a terminal,
    and a context manager factory that suspends pytest's output capture. Returns the decision."""
    _STATE.enabled = decide(verbosity, isatty, os.environ.get(ENV))
    _STATE.suspend = suspend
    return _STATE.enabled


def reset() -> None:
    """Back to "not configured" (``plugin.py`` at unconfigure: the next run decides anew)."""
    _STATE.enabled, _STATE.suspend = None, None


def enabled() -> bool:
    if _STATE.enabled is not None:
        return _STATE.enabled
    stream = sys.stderr
    return decide(0, bool(getattr(stream, "isatty", lambda: False)()), os.environ.get(ENV))


class _Terminal:
    """The file tqdm writes to: stderr, with pytest's capture suspended for each write."""

    def write(self, text: str) -> int:
        with _suspended():
            sys.stderr.write(text)
            sys.stderr.flush()
        return len(text)

    def flush(self) -> None:
        return None  # every write is flushed


def _suspended() -> AbstractContextManager[Any]:
    return _STATE.suspend() if _STATE.suspend is not None else nullcontext()


def say(line: str) -> None:
    """One line about what runs now (shown only when progress is)."""
    if enabled():
        _Terminal().write(PREFIX + line + "\n")


class Step:
    """A long step: its line when it opens, a bar while it runs, its time when it ends.
    Callable with the units done (``step(n)``), so it is also a ``progress`` callback."""

    def __init__(self, what: str, total: int | None = None, unit: str = "img") -> None:
        self.what, self.total, self.unit = what, total, unit
        self.shown = False
        self.done = 0
        self._bar: Any = None
        self._t0 = 0.0

    def __enter__(self) -> Step:
        self.shown = enabled()
        self._t0 = time.perf_counter()
        if self.shown:
            from tqdm import tqdm

            say(self.what)
            self._bar = tqdm(
                total=self.total, unit=self.unit, file=_Terminal(), leave=False,
                mininterval=0.5, dynamic_ncols=True, desc="kpmodel",
            )  # fmt: skip
        return self

    def __call__(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def expect(self, n: int) -> None:
        """``n`` more units than announced (a sub-step that counts its work once it knows it)."""
        self.total = (self.total or 0) + n
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def __exit__(self, exc_type, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.shown:
            seconds = time.perf_counter() - self._t0
            state = "done" if exc_type is None else "stopped"
            say(f"{self.what}: {state} in {seconds:.1f} s")


def step(what: str, total: int | None = None, unit: str = "img") -> Step:
    return Step(what, total, unit)
