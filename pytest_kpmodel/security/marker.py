"""``kp_security(pickle="strict", network=False, subprocess=False, writes=False, code=False)``.

Judged against the run: the static scan of the weights and of every other file in the card's
folder (by content: inert data passes, anything unrecognised fails - see ``scan_folder``),
what the format implies (code), and what the runtime guard recorded while the model loaded and
predicted. The evaluation loads the
model and runs one prediction itself, so a spec whose only test is the security test still
exercises the model's code under the guard.
"""

from __future__ import annotations

from ..errors import KpModelError
from ..findings import CheckResult, Finding
from .guard import NETWORK, SUBPROCESS, WRITE
from .policy import SecurityPolicy

PICKLE_KINDS = ("torch-zip", "torch-legacy", "torchscript", "pickle", "numpy-pickle", "tar")


def folder_findings(session) -> list[Finding]:
    """The card folder's other files, scanned as ``kpmodel scan FOLDER`` would (with the run's
    allow-list extensions): their failing findings, and one info line summing up."""
    from .scan import scan_folder

    card = session.card
    weights = card.model.weights
    if getattr(card, "unpinned", False):
        # A bare checkpoint's folder is wherever the user keeps it (a downloads folder), not a
        # model's files named by a card: the checkpoint alone is the model.
        return [Finding("security.folder", f"{card.path}: a bare checkpoint (unpinned run): "
                        "its folder's other files are not the model's and are not scanned",
                        "info")]  # fmt: skip
    reports = scan_folder(
        card.folder,
        extra_globals=session.security_policy.allow_globals,
        allow_code=session.allow_code,
        allowlists=getattr(session, "allowlists", ()),
        skip=[weights] if weights is not None else [],
    )
    out = [f for r in reports for f in r.findings if f.severity == "fail"]
    bad = sum(1 for r in reports if not r.ok)
    out.append(
        Finding(
            "security.folder",
            f"{card.folder}: {len(reports)} other files scanned by content, "
            + (f"{bad} refused" if bad else "all clean"),
            "info",
            {"files": len(reports), "refused": bad},
        )
    )
    return out


def evaluate(session, *args, **kwargs) -> CheckResult:
    policy = SecurityPolicy.from_marker(args, kwargs)
    result = CheckResult("kp_security")
    card = session.card
    if card.runs_code and not policy.code:
        result.findings.append(
            Finding(
                "security.code",
                f"format {card.model.format!r} runs code shipped with the model; "
                "kp_security(code=True) accepts that",
            )
        )
        if not session.allow_code:
            return result  # the model will not be loaded at all in this run
    scan = session.scan
    if scan is not None:
        result.findings += scan.findings
        if policy.pickle == "none" and scan.kind in PICKLE_KINDS:
            result.findings.append(
                Finding(
                    "security.pickle",
                    f"{scan.path}: a {scan.kind} file holds a pickle; kp_security(pickle='none') "
                    "accepts only safetensors or ONNX",
                )
            )
    result.findings += folder_findings(session)
    if scan is not None and not scan.ok:
        return result  # never load what the scan refused
    try:
        session.exercise_model()
    except KpModelError as exc:
        if not session.guard.violations:
            raise
        del exc  # the violation itself is reported below, with its stack
    allowed = {NETWORK: policy.network, SUBPROCESS: policy.subprocess, WRITE: policy.writes}
    for event in session.guard.events:
        if allowed.get(event.category, False):
            continue
        stack = "; ".join(event.stack[-3:])
        result.findings.append(
            Finding(
                "security.runtime",
                f"{event.describe()} (stack: {stack})" if stack else event.describe(),
                details=event.to_json(),
            )
        )
    return result
