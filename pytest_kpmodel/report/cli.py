"""``kpmodel report DIR``: re-render ``DIR/index.html`` from ``DIR/kp-report.json`` and the
artifact files beside it, without rerunning anything.

Exit codes: 0 written; 2 usage error (no such folder, no ``kp-report.json``, invalid JSON, a
JSON document that is not a report object).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import KpModelError
from .json_report import REPORT_NAME


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="re-render index.html from a kp-report.json",
        description="Re-render DIR/index.html (self-contained: CSS, charts and the images "
        "the report references are inlined) from DIR/kp-report.json, without rerunning "
        "anything.",
    )
    p.add_argument("folder", metavar="DIR", help="folder holding kp-report.json (--kp-report)")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the page here instead of DIR/index.html (images are still read from DIR)",
    )
    p.set_defaults(func=run)


def load_report(folder: Path) -> dict:
    """``folder/kp-report.json`` as a dict; ``KpModelError`` naming the file otherwise."""
    if not folder.is_dir():
        raise KpModelError(f"{folder}: no such folder (pass the --kp-report folder)")
    path = folder / REPORT_NAME
    if not path.is_file():
        raise KpModelError(f"{path}: not found; run pytest with --kp-report={folder} first")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise KpModelError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise KpModelError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(report, dict):
        raise KpModelError(f"{path}: expected a JSON object, got {type(report).__name__}")
    return report


def run(args: argparse.Namespace) -> int:
    from .assets import Assets, write_text_atomic
    from .html import HTML_NAME, render

    folder = Path(args.folder).expanduser()
    report = load_report(folder)
    out = Path(args.output).expanduser() if args.output else folder / HTML_NAME
    try:
        write_text_atomic(out, render(report, Assets(folder)))
    except OSError as exc:
        raise KpModelError(f"{out}: cannot write ({exc.strerror or exc})") from None
    print(f"kpmodel: wrote {out}", file=sys.stdout)
    return 0
