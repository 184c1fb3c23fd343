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
``opcode``, ``name`` (the imported ``module.name``), ``verdict`` (the label of a failing
finding, see below) and ``count`` (how often the same cause occurred).

Every failing finding carries one of three labels, and a file's verdict is the worst of them
(``unsafe`` > ``unverifiable`` > ``unsupported`` > ``clean``); all three fail closed:

``unsafe``        loading it would import or call something outside the allow-list (or run
                  code: TorchScript, custom ops), or a tensor record reaches outside its storage
``unverifiable``  it could not be parsed, or readers may disagree on what it contains (zip
                  layout ambiguities, pickle framing that reads differently from a file and
                  from bytes, resource limits): nothing can be promised about it
``unsupported``   it was parsed completely and nothing in it would run, but it is not a
                  format this scanner accepts (an int-only ``.npz`` given as weights, a protocol-4
                  list pickle, an encrypted or compressed zip member, opcodes torch.save never
                  emits)

:data:`LABELS` maps each finding ``code`` to its label (a code not in it is ``unsafe``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..findings import Finding

Verdict = Literal["clean", "unsafe", "unverifiable", "unsupported"]

UNSAFE = "unsafe"
UNVERIFIABLE = "unverifiable"
UNSUPPORTED = "unsupported"
# worst first: a file's verdict is the first of these that one of its findings carries
VERDICTS = (UNSAFE, UNVERIFIABLE, UNSUPPORTED)

# The label of each finding code when the call site does not give one.
_UNSAFE_CODES = (
    # pickle: an import, or a call/attribute write CPython would perform
    "disallowed-global extension call-non-global call-kwargs call-args call-role setitem-target "
    "append-target additems-target build-target build-state polyglot payload dynamic-global "
    # tensors that reach outside their storage; code; paths that leave the folder on extraction
    "tensor-bounds storage-size torchscript aoti custom-domain external-escape name attributes "
    "binary-code source-code yaml-python-tag"
)
_UNVERIFIABLE_CODES = (
    "truncated underflow no-mark bad-opcode bad-literal bad-length memo unhashable odd-items "
    "stack-global out-of-band bad-target framing recursion resources internal-error unknown unreadable "
    "not-a-file onnx-missing tar no-eocd appended-data prepended-data multi-disk zip64 cd-gap "
    "cd-entry duplicate sizes local-header name-mismatch header-mismatch bounds descriptor gap "
    "overlap inflate inflate-size json json-size legacy-header legacy-sysinfo legacy-truncated "
    "header-bounds duplicate-key header-json offsets size external-bounds external-data "
    "npy-header npy-size findings-omitted"
)
_UNSUPPORTED_CODES = (
    "opcode protocol proto-position persistent-id stop-leftover trailing-data not-torch "
    "not-weights empty comment extra encrypted flags compressed crc top-folder no-data-pkl "
    "member-name nested-archive metadata legacy-tar legacy-keys legacy-size storage-missing "
    "storage-unreferenced entry dtype shape external-missing npy-object setitem-builtin"
)
# what each label means, for --json and the CLI legend
MEANING: dict[str, str] = {
    UNSAFE: "loading it would import or call something outside the allow-list, or run code",
    UNVERIFIABLE: "it could not be parsed, or readers may disagree on what it contains",
    UNSUPPORTED: "nothing in it would run, but it is not a format this scanner accepts",
}
LABELS: dict[str, str] = {
    **{c: UNSAFE for c in _UNSAFE_CODES.split()},
    **{c: UNVERIFIABLE for c in _UNVERIFIABLE_CODES.split()},
    **{c: UNSUPPORTED for c in _UNSUPPORTED_CODES.split()},
}


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
        self._omitted_worst: str | None = None  # the worst label among omitted failures

    def add(
        self,
        check: str,
        code: str,
        why: str,
        *,
        verdict: str | None = None,
        severity: str = "fail",
        member: str | None = None,
        offset: int | None = None,
        opcode: str | None = None,
        name: str | None = None,
        dedupe: tuple[Any, ...] | None = None,
        **extra: Any,
    ) -> None:
        if severity == "fail" and verdict is None:
            verdict = label(code)
        key = (check, code, member, name, opcode) if dedupe is None else (check, code, *dedupe)
        idx = self._index.get(key)
        if idx is not None:
            self._counts[idx] = self._counts.get(idx, 1) + 1
            return
        if len(self.findings) >= self.limits.max_findings:
            self._omitted += 1
            if severity == "fail" and (
                self._omitted_worst is None or _rank(verdict) < _rank(self._omitted_worst)
            ):
                self._omitted_worst = verdict or UNSAFE
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
            details["verdict"] = verdict
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
            worst = self._omitted_worst
            details: dict[str, Any] = {"file": self.file, "code": "findings-omitted"}
            if worst is not None:
                details["verdict"] = worst
            out.append(
                Finding(
                    "security.limits",
                    f"{self.file}: {self._omitted} more findings omitted "
                    f"(max_findings={self.limits.max_findings})"
                    + (f"; the worst of them is {worst}" if worst else ""),
                    "fail" if worst else "info",
                    details,
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
    # files this scan verified as data (an ONNX model's external data): in a folder scan they
    # are covered by it
    covers: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """The worst label among the failing findings (``"clean"`` without any)."""
        labels = {f.details.get("verdict", UNSAFE) for f in self.findings if f.severity == "fail"}
        for v in VERDICTS:
            if v in labels:
                return v  # type: ignore[return-value]
        return "unsafe" if labels else "clean"

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


def label(code: str) -> str:
    """The label of a failing finding ``code`` (resource limits are ``unverifiable``)."""
    if code.startswith("limit-"):
        return UNVERIFIABLE
    return LABELS.get(code, UNSAFE)


def _rank(verdict: str | None) -> int:
    return VERDICTS.index(verdict) if verdict in VERDICTS else 0


def worst(verdicts: Iterable[str]) -> str:
    """The worst of several verdicts (``"clean"`` for none or all clean)."""
    seen = set(verdicts)
    return next((v for v in VERDICTS if v in seen), "clean")


def file_identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
