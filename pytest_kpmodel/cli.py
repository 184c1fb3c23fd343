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

# subcommand -> module defining register(subparsers); each module is imported once, to build the
# parser (the modules keep their heavy imports inside the commands).
SUBCOMMANDS: dict[str, str] = {
    "scan": "pytest_kpmodel.security.cli",
    "card": "pytest_kpmodel.provenance.cli",
    "sign": "pytest_kpmodel.provenance.cli",
    "verify": "pytest_kpmodel.provenance.cli",
    "diff": "pytest_kpmodel.provenance.cli",
    "keygen": "pytest_kpmodel.provenance.cli",
    "report": "pytest_kpmodel.report.cli",
    "init": "pytest_kpmodel.scaffold.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpmodel", description="Acceptance checks for keypoint models, outside pytest."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in dict.fromkeys(SUBCOMMANDS.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # feature not installed in this build
            raise
        module.register(sub)
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
