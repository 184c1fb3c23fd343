"""What a stream may contain: opcodes, globals, protocols, persistent ids, and a profile's own
call checks (:class:`PickleRules`), with the presets for torch files (:func:`make_rules`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..allowlist import Allowlist
from .opcodes import HEADER_OPCODES, TORCH_OPCODES, TORCH_PROTOCOLS

if TYPE_CHECKING:
    from .storages import StorageTable


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
