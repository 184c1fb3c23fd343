"""``kpmodel``: the plugin's command line, for work outside a pytest run.

Each subcommand lives in the module that owns its feature; that module's ``register(subparsers)``
adds its parser and sets ``func`` (which returns the exit code). Exit codes: 0 ok, 1 the check
found a problem, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import KpModelError

# subcommand -> module defining register(subparsers); imported lazily so `kpmodel --help` is quick.
SUBCOMMANDS: dict[str, str] = {
    "scan": "pytest_kpmodel.security.cli",
    "card": "pytest_kpmodel.provenance_cli",
    "sign": "pytest_kpmodel.provenance_cli",
    "verify": "pytest_kpmodel.provenance_cli",
    "diff": "pytest_kpmodel.provenance_cli",
    "keygen": "pytest_kpmodel.provenance_cli",
    "report": "pytest_kpmodel.report.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpmodel", description="Acceptance checks for keypoint models, outside pytest."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registered: set[str] = set()
    for module_name in dict.fromkeys(SUBCOMMANDS.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # feature not installed in this build
            raise
        module.register(sub)
        registered.add(module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except KpModelError as exc:
        print(f"kpmodel: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
