"""Errors shown to users: one clear sentence naming the file, key or value, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KpModelError(Exception):
    """Base of every error the plugin reports to a user as a single message."""


class CardError(KpModelError):
    """The model card is missing, malformed or refers to something that is not there."""

    def __init__(self, path: object, message: str, key: str | None = None) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}: [{key}] " if key else f"{self.path}: "
        super().__init__(where + message)


class DatasetError(KpModelError):
    """The evaluation set's annotations or images are missing or unreadable."""


class AdapterError(KpModelError):
    """A model could not be built or loaded by its adapter."""


class RefusedToLoad(KpModelError):
    """The security scan found a reason not to load the weights."""


class ExportUnavailable(KpModelError):
    """The model could not be exported to a format; the message is the exporter's reason."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error says about a failure deep inside a library."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """``"did you mean 'sha256'? "`` when ``name`` is close to one of ``allowed`` (difflib's
    ratio >= 0.6), else ``""``: the one hint card keys, marker arguments and ini keys share, so a
    typo is named with its fix wherever it is made."""
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""
