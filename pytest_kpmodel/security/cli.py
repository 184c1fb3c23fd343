"""``kpmodel scan PATH...``: static scan of weights files and folders.

Prints one line per finding (file, member, byte offset, opcode, imported name, why) and a
verdict per file: CLEAN, or the worst label of its findings - UNSAFE (would import or call
something outside the allow-list, or run code), UNVERIFIABLE (could not be parsed, or readers
may disagree on its content) or UNSUPPORTED (nothing would run, but not a format this scanner
accepts). ``--json`` prints one JSON document instead (``verdict``, ``labels``: what each
label means, ``files``). In a folder every file is scanned by content; inert data (JSON,
TOML, text, images, numeric numpy arrays) is clean, anything unrecognised fails. Exit status:
0 every file is clean, 1 something is unsafe, unverifiable or unsupported, 2 usage error
(bad option, missing path). Nothing is ever unpickled or imported from the scanned files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..errors import KpModelError
from .allowlist import describe, parse_global
from .report import MEANING, ScanLimits, worst
from .scan import scan_paths


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scan",
        help="statically scan weights files/folders for pickle payloads and archive tricks",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to scan")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--allow-global",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="extend the pickle allow-list (reported as info); repeatable",
    )
    p.add_argument(
        "--allowlist",
        action="append",
        default=[],
        metavar="NAME",
        help="add a shipped, reviewed allow-list (e.g. ultralytics); repeatable",
    )
    p.add_argument(
        "--allow-code",
        action="store_true",
        help="accept TorchScript code / custom ONNX op domains (reported as info)",
    )
    p.add_argument("--no-recursive", action="store_true", help="do not descend into subfolders")
    p.add_argument("--max-ops", type=int, default=ScanLimits.max_ops, metavar="N")
    p.add_argument("--max-memo", type=int, default=ScanLimits.max_memo, metavar="N")
    p.add_argument("--max-depth", type=int, default=ScanLimits.max_depth, metavar="N")
    p.add_argument(
        "--show-allowlist",
        action="store_true",
        help="print the default allow-list (and those of --allowlist) with reasons and exit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .allowlist import PROFILES, profile_entries

    for name in args.allowlist:
        if name not in PROFILES:
            raise KpModelError(
                f"scan: --allowlist {name}: unknown; shipped, reviewed lists: {', '.join(PROFILES)}"
            )
    if args.show_allowlist:
        entries = describe()
        for name in args.allowlist:  # with --allowlist NAME: that reviewed list too
            entries += [
                {"name": e.full, "role": e.role, "why": e.why, "allowlist": name}
                for e in profile_entries(name)
            ]
        if args.json:
            print(json.dumps(entries, indent=2))
        else:
            for e in entries:
                print(f"{e['name']}  [{e['role']}]\n    {e['why']}")
        return 0
    if not args.paths:
        raise KpModelError("scan: give at least one PATH")
    for p in args.paths:
        if not os.path.exists(p):
            raise KpModelError(f"scan: {p}: no such file or folder")
    for g in args.allow_global:
        try:
            parse_global(g)
        except ValueError as e:
            raise KpModelError(f"scan: --allow-global: {e}") from None
    for name in ("max_ops", "max_memo", "max_depth"):
        if getattr(args, name) <= 0:
            raise KpModelError(f"scan: --{name.replace('_', '-')} must be positive")
    limits = ScanLimits(max_ops=args.max_ops, max_memo=args.max_memo, max_depth=args.max_depth)
    reports = scan_paths(
        args.paths,
        extra_globals=args.allow_global,
        allow_code=args.allow_code,
        limits=limits,
        recursive=not args.no_recursive,
        allowlists=args.allowlist,
    )
    bad = [r for r in reports if not r.ok]
    try:
        _print(args, reports, bad)
    except BrokenPipeError:
        # `kpmodel scan X | head`: the reader is gone; exit quietly (no traceback, and no
        # second error when Python flushes stdout at exit)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 1 if bad else 0


def _print(args: argparse.Namespace, reports: list[Any], bad: list[Any]) -> None:
    if args.json:
        doc = {
            "verdict": worst(r.verdict for r in reports),
            "labels": MEANING,
            "files": [r.to_json() for r in reports],
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
        return
    for r in reports:
        extra = f", {r.tensors} tensors" if r.tensors else ""
        if r.ok and any(f.details.get("code") == "inert" for f in r.findings):
            print(f"{r.path}: CLEAN (inert {r.kind})")
            continue
        print(f"{r.path}: {r.verdict.upper()} ({r.kind}{extra})")
        for f in r.findings:
            d = f.details
            tags = " ".join(f"{k}={d[k]}" for k in ("opcode", "name") if d.get(k) is not None)
            tag = f" [{tags}]" if tags else ""
            print(f"  {f.severity:<4} {f.check}: {f.message}{tag}")
    n = len(reports)
    labels = [r.verdict for r in bad]
    counts = ", ".join(f"{labels.count(v)} {v}" for v in MEANING if v in labels)
    print(f"{n - len(bad)}/{n} files clean" + (f"; refused: {counts}" if bad else ""))
