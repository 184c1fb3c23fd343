"""Scan results: :class:`ScanReport`, :class:`ScanLimits` and the per-file finding collector.

Every finding is a :class:`pytest_kpmodel.findings.Finding` whose ``check`` is one of

========================  ============================================================
``security.pickle``       an opcode, import or call in a pickle stream
``security.tensor``       a tensor/storage record that does not fit the archive
``security.zip``          zip structure (headers, names, flags, CRC, extra bytes)
``security.container``    container layout (legacy torch, tar, member names)
``security.safetensors``  safetensors header/offsets
``security.onnx``         ONNX structure, external data, custom op domains
``security.code``         the file carries code (TorchScript, custom ops)
``security.limits``       a resource limit was exceeded (fails closed)
``security.format``       the format could not be recognised or parsed
``security.allowlist``    info: the caller extended the allow-list
``security.runtime``      (from :mod:`.guard`) an event during model loading/predict
========================  ============================================================

``details`` always holds ``file`` and ``code`` (a short machine-readable reason, e.g.
``"disallowed-global"``) and, where they apply, ``member`` (path inside an archive),
``offset`` (byte offset inside the member, or inside the file when there is no member),
``opcode``, ``name`` (the imported ``module.name``), ``verdict`` (``"unsafe"`` or
``"unverifiable"`` for failing findings) and ``count`` (how often the same cause occurred).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from ..findings import Finding

Verdict = Literal["clean", "unsafe", "unverifiable"]

UNSAFE = "unsafe"
UNVERIFIABLE = "unverifiable"


@dataclass(frozen=True)
class ScanLimits:
    """Resource limits; exceeding one is an ``unverifiable`` finding (the scan fails closed).

    The defaults are two to three orders of magnitude above what a Keypoint R-CNN R50-FPN
    training checkpoint (model + optimizer + lr scheduler + args) needs: ~60k opcodes,
    ~12k memo entries, nesting depth < 10.
    """

    max_ops: int = 5_000_000  # pickle opcodes per stream
    max_memo: int = 1_000_000  # memo entries, and the largest memo index
    max_depth: int = 100  # container nesting and MARK stack depth
    max_string: int = 16 << 20  # bytes in one string/bytes/long literal
    max_members: int = 200_000  # zip members
    max_findings: int = 200  # findings kept per file (then one "more omitted" finding)
    max_header: int = 100_000_000  # safetensors JSON header bytes (safetensors' own limit)
    max_nesting: int = 4  # archives inside archives (.pt2 sample inputs) scanned recursively


class Collector:
    """Collects findings for one file, one finding per distinct cause (repeats are counted)."""

    def __init__(self, file: str, limits: ScanLimits) -> None:
        self.file = file
        self.limits = limits
        self.findings: list[Finding] = []
        self._index: dict[tuple[Any, ...], int] = {}
        self._counts: dict[int, int] = {}
        self._omitted = 0

    def add(
        self,
        check: str,
        code: str,
        why: str,
        *,
        verdict: str | None = UNSAFE,
        severity: str = "fail",
        member: str | None = None,
        offset: int | None = None,
        opcode: str | None = None,
        name: str | None = None,
        dedupe: tuple[Any, ...] | None = None,
        **extra: Any,
    ) -> None:
        key = (check, code, member, name, opcode) if dedupe is None else (check, code, *dedupe)
        idx = self._index.get(key)
        if idx is not None:
            self._counts[idx] = self._counts.get(idx, 1) + 1
            return
        if len(self.findings) >= self.limits.max_findings:
            self._omitted += 1
            return
        where = self.file + (f":{member}" if member else "")
        if offset is not None:
            where += f" @{offset}"
        details: dict[str, Any] = {"file": self.file, "code": code}
        if member is not None:
            details["member"] = member
        if offset is not None:
            details["offset"] = offset
        if opcode is not None:
            details["opcode"] = opcode
        if name is not None:
            details["name"] = name
        if severity == "fail":
            details["verdict"] = verdict or UNSAFE
        details.update(extra)
        self._index[key] = len(self.findings)
        self.findings.append(
            Finding(check=check, message=f"{where}: {why}", severity=severity, details=details)  # type: ignore[arg-type]
        )

    def fail_count(self) -> int:
        return sum(1 for f in self.findings if f.severity == "fail")

    def finish(self) -> list[Finding]:
        out: list[Finding] = []
        for i, f in enumerate(self.findings):
            n = self._counts.get(i)
            if n:
                d = dict(f.details)
                d["count"] = n
                f = Finding(f.check, f"{f.message} ({n} occurrences)", f.severity, d)
            out.append(f)
        if self._omitted:
            out.append(
                Finding(
                    "security.limits",
                    f"{self.file}: {self._omitted} more findings omitted "
                    f"(max_findings={self.limits.max_findings})",
                    "fail",
                    {"file": self.file, "code": "findings-omitted", "verdict": UNSAFE},
                )
            )
        return out


@dataclass
class ScanReport:
    """The result of scanning one file. ``ok`` is True only for the verdict ``"clean"``."""

    path: str
    kind: str  # torch-zip | torch-legacy | torch-tar | torchscript | torch-export | safetensors | onnx | pickle | unknown | missing
    findings: list[Finding] = field(default_factory=list)
    size: int = 0
    # file identity at scan time (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns); the
    # loading helper refuses a file whose identity changed since it was scanned
    identity: tuple[int, ...] | None = None
    # every global the pickle(s) import, as "module.name" (allowed or not)
    globals: list[str] = field(default_factory=list)
    tensors: int = 0
    storages: int = 0
    duration_s: float = 0.0

    @property
    def verdict(self) -> Verdict:
        fails = [f for f in self.findings if f.severity == "fail"]
        if not fails:
            return "clean"
        if any(f.details.get("verdict", UNSAFE) == UNSAFE for f in fails):
            return "unsafe"
        return "unverifiable"

    @property
    def ok(self) -> bool:
        return self.verdict == "clean"

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "fail"]

    def refusal(self) -> str:
        """``"refused to load: <finding>; <finding>..."`` (empty when the file is clean)."""
        if self.ok:
            return ""
        return "refused to load: " + "; ".join(f.message for f in self.failures)

    def raise_if_unsafe(self) -> None:
        """Raise :class:`pytest_kpmodel.errors.RefusedToLoad` unless the verdict is clean."""
        if not self.ok:
            from ..errors import RefusedToLoad

            raise RefusedToLoad(self.refusal())

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "verdict": self.verdict,
            "size": self.size,
            "tensors": self.tensors,
            "storages": self.storages,
            "globals": list(self.globals),
            "duration_s": round(self.duration_s, 6),
            "findings": [f.to_json() for f in self.findings],
        }


def file_identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
