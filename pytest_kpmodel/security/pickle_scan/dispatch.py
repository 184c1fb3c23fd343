"""The dispatch table: opcode byte -> handler, from the handler modules' tables. Each handler
takes the machine and returns True on STOP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import imports, literals, stack, structures
from .opcodes import BYNAME, OPCODES

if TYPE_CHECKING:
    from .machine import VM

_TABLES = (stack.HANDLERS, literals.HANDLERS, structures.HANDLERS, imports.HANDLERS)
DISPATCH: dict[int, Callable[[VM], Any]] = {
    BYNAME[name]: handler for table in _TABLES for name, handler in table.items()
}
assert set(DISPATCH) == set(OPCODES) and sum(map(len, _TABLES)) == len(OPCODES)
