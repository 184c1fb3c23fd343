"""A package's names imported from their modules on first use (PEP 562), so that importing one
module of the package (``security.policy``, ``provenance.digests``) does not import the rest.
Imports nothing of the project; anyone may use it::

    __getattr__, __dir__ = lazy_exports(globals(), {"scan_path": "scan", ...})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package whose ``globals()`` is ``namespace``;
    ``names`` maps each exported name to its submodule. A name, once read, is a plain global."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *names])

    return __getattr__, __dir__
