"""The run's security policy: what the spec's ``kp_security`` markers permit.

The guard must be configured before the model loads (loading happens once per run, usually
before any security test runs), so the plugin reads every collected ``kp_security`` marker up
front. A permission granted by any marker applies to the run; each marker is then judged by
its own settings against what the guard recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import KpModelError
from ..marker_args import check_marker_args

MARKER_ARGS = ("pickle", "network", "subprocess", "writes", "code", "allow_globals", "allowlist")
PICKLE_MODES = ("strict", "none")


@dataclass(frozen=True)
class SecurityPolicy:
    pickle: str = "strict"
    network: bool = False
    subprocess: bool = False
    writes: bool = False
    code: bool = False
    allow_globals: tuple[str, ...] = field(default=())
    # opt-in reviewed allow-lists by name (allowlist.PROFILES), e.g. ("ultralytics",)
    allowlist: tuple[str, ...] = field(default=())

    @classmethod
    def from_marker(cls, args: tuple, kwargs: dict[str, Any]) -> SecurityPolicy:
        check_marker_args("kp_security", args, kwargs, MARKER_ARGS)
        pickle = kwargs.get("pickle", "strict")
        if pickle not in PICKLE_MODES:
            raise KpModelError(
                f"kp_security(pickle={pickle!r}): use 'strict' (allow-listed state dicts only) "
                "or 'none' (no pickle at all: safetensors or ONNX)"
            )
        for key in ("network", "subprocess", "writes", "code"):
            if not isinstance(kwargs.get(key, False), bool):
                raise KpModelError(f"kp_security({key}=...) must be True or False")
        globals_ = kwargs.get("allow_globals", ())
        if isinstance(globals_, str) or not all(isinstance(g, str) for g in globals_):
            raise KpModelError("kp_security(allow_globals=[...]) takes a list of 'module.name'")
        from .allowlist import PROFILES

        profiles = kwargs.get("allowlist", ())
        if isinstance(profiles, str) or not all(isinstance(g, str) for g in profiles):
            raise KpModelError(
                "kp_security(allowlist=[...]) takes a list of allow-list names, e.g. "
                '["ultralytics"]'
            )
        for name in profiles:
            if name not in PROFILES:
                raise KpModelError(
                    f"kp_security(allowlist=[{name!r}]): unknown allow-list; shipped, reviewed "
                    f"lists: {', '.join(PROFILES)}"
                )
        return cls(
            pickle=pickle,
            network=kwargs.get("network", False),
            subprocess=kwargs.get("subprocess", False),
            writes=kwargs.get("writes", False),
            code=kwargs.get("code", False),
            allow_globals=tuple(globals_),
            allowlist=tuple(dict.fromkeys(profiles)),
        )

    def union(self, other: SecurityPolicy) -> SecurityPolicy:
        """The run-wide policy: permissions any marker grants; the strictest pickle mode."""
        return SecurityPolicy(
            pickle="none" if "none" in (self.pickle, other.pickle) else "strict",
            network=self.network or other.network,
            subprocess=self.subprocess or other.subprocess,
            writes=self.writes or other.writes,
            code=self.code or other.code,
            allow_globals=tuple(dict.fromkeys(self.allow_globals + other.allow_globals)),
            allowlist=tuple(dict.fromkeys(self.allowlist + other.allowlist)),
        )
