"""``--kp-summary=FILE``: the run's verdict as GitHub-flavoured Markdown.

The gate table (check, value, threshold, margin, baseline, verdict), grouped by concern as in the
terminal summary, the findings of failed checks and every check that did not run. Plain Markdown
(tables, lists, emoji): fit for ``$GITHUB_STEP_SUMMARY`` and a merge-request comment, no HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_text
from .terminal import COLUMNS, gate_rows

PASS, FAIL, SKIP = "✅ pass", "❌ FAIL", "⚠️ did not run"


def cell(text: Any) -> str:
    """One table cell: pipes escaped, newlines folded (a cell is one line)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: int = 0) -> list[str]:
    """``right``: the columns from this index on are right-aligned (numbers)."""
    align = ["---:" if right and i >= right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def render(
    checks: Sequence[Mapping[str, Any]],
    not_run: Sequence[Mapping[str, Any]] = (),
    model: str | None = None,
    outcome: str | None = None,
) -> str:
    """The summary. ``checks``: the run's check entries (``kp-report.json``'s ``checks``);
    ``not_run``: ``required.NotRun.to_json()`` entries; ``model``: what was tested (the
    reproduction header); ``outcome``: pytest's final line, e.g. "22 passed, 2 skipped"."""
    grouped = gate_rows(list(checks))
    rows = [r for rs in grouped.values() for r in rs]
    failed_gates = sum(r[-1] == "FAIL" for r in rows)
    failed = [c for c in checks if not c.get("passed") and not c.get("skipped")]
    required_missing = [e for e in not_run if e.get("required")]
    bad = failed_gates or failed or required_missing
    verdict = FAIL if bad else PASS if rows else SKIP  # nothing evaluated is not green
    lines = [f"## kpmodel: {verdict.split(' ', 1)[0]} {_headline(rows, failed, not_run)}", ""]
    if model:
        lines += [f"`{cell(model)}`", ""]
    if outcome:
        lines += [f"pytest: {cell(outcome)}", ""]
    if rows:
        table_rows = []
        for concern, rs in grouped.items():
            table_rows.append((f"**{concern}**", "", "", "", "", ""))
            table_rows += [(*r[:-1], PASS if r[-1] == "pass" else FAIL) for r in rs]
        lines += [*_table(COLUMNS, table_rows, right=1), ""]
    elif not not_run:
        lines += ["No gate was evaluated.", ""]
    findings = []
    for c in failed:
        msgs = [f["message"] for f in c.get("findings", []) if f.get("severity") == "fail"]
        if msgs:
            findings.append(f"- **{cell(c.get('marker'))}** in `{cell(c.get('nodeid'))}`")
            findings += [f"  - {cell(m)}" for m in msgs]
    if findings:
        lines += ["### Findings", "", *findings, ""]
    if not_run:
        lines += ["### Checks that did not run", ""]
        lines += _table(
            ("check", "test", "reason", "required"),
            [
                (
                    e.get("name"),
                    f"`{e['nodeid']}`" if e.get("nodeid") else "(the run)",
                    e.get("reason"),
                    "**required: fails**" if e.get("required") else "no",
                )
                for e in not_run
            ],
        )
        lines.append("")
    return "\n".join(lines)


def _headline(rows: Sequence[Sequence[str]], failed: Sequence[Any], not_run: Sequence[Any]) -> str:
    passed = sum(r[-1] == "pass" for r in rows)
    parts = [f"{passed}/{len(rows)} gates passed" if rows else "no gate evaluated"]
    if failed:
        parts.append(f"{len(failed)} check(s) failed")
    if not_run:
        required = sum(bool(e.get("required")) for e in not_run)
        parts.append(
            f"{len(not_run)} did not run" + (f" ({required} required)" if required else "")
        )
    return ", ".join(parts)


def pytest_outcome(terminalreporter: Any | None) -> str | None:
    """pytest's own outcome line ("8 passed, 2 skipped"), from its terminal reporter."""
    if terminalreporter is None:
        return None
    try:
        return ", ".join(text for text, _ in terminalreporter.build_summary_stats_line()[0])
    except AttributeError:  # another pytest's terminal reporter
        return None


def write_summary(path: Path, kp: Any | None, not_run: Sequence[Mapping[str, Any]],
                  terminalreporter: Any | None) -> str | None:  # fmt: skip
    """``--kp-summary``: render the run (``kp``: a ``KpSession``, None without a model) with
    pytest's outcome line and write it; a warning when the file cannot be written (the run's
    verdict stands)."""
    outcome = pytest_outcome(terminalreporter)
    header = None
    if kp is not None:
        from ..header import reproduction_header

        header = reproduction_header(kp)
    text = render(kp.checks if kp is not None else [], not_run, header, outcome)
    try:
        write(text, path)
    except OSError as exc:
        return f"--kp-summary {path} not written: {exc}"
    return None


def write(text: str, path: Path) -> Path:
    """Atomically, so a CI step reading the file never sees half of it."""
    return write_text(path, text if text.endswith("\n") else text + "\n")
