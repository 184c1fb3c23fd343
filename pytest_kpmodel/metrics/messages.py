"""How values appear in refusals and warnings: plain Python numbers, cut lists, id lists; and
the small type checks the input checks share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DatasetError

#: How many annotation ids a warning or refusal lists before it gives only the count.
SHOWN_IDS = 10


def plain(value: Any) -> Any:
    """Numpy scalars and arrays (in lists too) as Python numbers and lists, for messages."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def show(value: Any, limit: int = 12) -> str:
    """``repr`` of a value in a message: plain Python numbers (never ``np.float64(...)``), a
    long list cut after ``limit`` items with its length."""
    v = plain(value)
    if isinstance(v, list) and len(v) > limit:
        return f"[{', '.join(map(repr, v[:limit]))}, ...] ({len(v)} values)"
    return repr(v)


def id_list(ids: Sequence[Any], total: int | None = None) -> str:
    """``ids 3, 7, 9 and 12 more``: at most SHOWN_IDS ids, then the count."""
    ids = [plain(i) for i in ids]
    total = len(ids) if total is None else total
    head = ", ".join(str(i) for i in ids[:SHOWN_IDS])
    more = f" and {total - min(total, SHOWN_IDS)} more" if total > SHOWN_IDS else ""
    return f"id{'s' if total != 1 else ''} {head}{more}"


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def number_list(value: Any, length: int, what: str) -> list[float]:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != length:
        got = len(value) if isinstance(value, (list, tuple, np.ndarray)) else type(value).__name__
        raise DatasetError(f"{what} must be a list of {length} numbers, got {got}")
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        raise DatasetError(f"{what} must contain only numbers, got {show(list(value))}") from None
    if not all(math.isfinite(v) for v in numbers):
        raise DatasetError(f"{what} contains a non-finite value: {show(numbers)}")
    return numbers
