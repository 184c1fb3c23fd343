"""The two ways a step of the scan stops: where CPython's unpickler raises (:class:`Fatal`), and
where an allow-listed call or persistent id has arguments torch.save never writes
(:class:`BadArgs`, caught by the machine and reported as a finding).
"""

from __future__ import annotations

from ..report import UNVERIFIABLE


class Fatal(Exception):
    """CPython's unpickler raises here (before running anything the opcode would run)."""

    def __init__(self, code: str, why: str, verdict: str = UNVERIFIABLE, check: str = "") -> None:
        super().__init__(why)
        self.code, self.why, self.verdict, self.check = code, why, verdict, check


class BadArgs(Exception):
    """An allow-listed call's or a persistent id's arguments are not what torch.save writes."""
