"""The layering of docs/ARCHITECTURE.md, enforced: who may import whom inside pytest_kpmodel.

Every module is parsed with ``ast`` (nothing is imported), every import statement is resolved
to the module it names (function-level and ``TYPE_CHECKING`` imports included: a circle hidden
in a function is still a circle), and the rules below are checked. ``ALLOWED`` is the table of
the package docstrings' "May import" lines; change it together with the docstring and
docs/ARCHITECTURE.md, never to make this test pass.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "pytest_kpmodel"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
TOP = "__init__"  # the unit of pytest_kpmodel/__init__.py (``__version__``)


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted, relative to the package ("metrics.oks", "plugin")
    target: str  # a project module relative to the package, or an outside top-level name
    line: int
    project: bool
    typing_only: bool  # under ``if TYPE_CHECKING:``: never runs

    @property
    def where(self) -> str:
        return f"{PACKAGE}/{self.source.replace('.', '/')}.py:{self.line}"


def unit(module: str) -> str:
    """The layer unit of a module: its top-level package or module ("metrics", "plugin")."""
    return module.split(".")[0] if module else TOP


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    p = root.joinpath(*dotted.split(".")) if dotted else root
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _is_type_checking(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (
        test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
    ) == "TYPE_CHECKING"


class _Reader:
    """The import statements of one module. Imports are statements, so only statement bodies
    are walked (functions, classes, if/try/with/for/match), never expressions: fast."""

    def __init__(self, root: Path, module: str, is_package: bool) -> None:
        self.root, self.module, self.is_package = root, module, is_package
        self.found: list[Import] = []

    def walk(self, body: Iterable[ast.AST], typing_only: bool = False) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._add(alias.name, node.lineno, typing_only)
            elif isinstance(node, ast.ImportFrom):
                self._from(node, typing_only)
            elif _is_type_checking(node):
                self.walk(node.body, True)
                self.walk(node.orelse, typing_only)
            else:
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        self.walk(children, typing_only)

    def _add(self, dotted: str, line: int, typing_only: bool) -> None:
        project = dotted == PACKAGE or dotted.startswith(PACKAGE + ".")
        if project:
            target = dotted.removeprefix(PACKAGE).removeprefix(".") or TOP
        else:
            target = dotted.split(".")[0]
        self.found.append(Import(self.module, target, line, project, typing_only))

    def _from(self, node: ast.ImportFrom, typing_only: bool) -> None:
        if node.level:
            base = [PACKAGE, *self.module.split(".")] if self.module else [PACKAGE]
            if not self.is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        for alias in node.names:  # ``from . import x``: x is a module when a file says so
            sub = f"{module}.{alias.name}"
            rel = sub.removeprefix(PACKAGE).removeprefix(".")
            is_sub = sub.startswith(PACKAGE) and _is_module(self.root, rel)
            self._add(sub if is_sub else module, node.lineno, typing_only)


def collect(root: Path = ROOT) -> list[Import]:
    """Every import statement of every module under ``root`` (a copy of the package works)."""
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        reader = _Reader(root, _module_name(path, root), path.name == "__init__.py")
        reader.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body)
        found += reader.found
    return found


# -- the rules ------------------------------------------------------------------------------------
# unit -> what it may import from the project: a unit ("errors") or one module of another unit
# ("robustness.oks": that module and below, not the package's __init__).
_BASE = {
    TOP: set(),
    "errors": set(),
    "findings": set(),
    "keypoint_presets": set(),
    "environment": set(),
    "zoo": set(),
    "keypoints": {"keypoint_presets"},
    "marker_args": {"errors"},
    "settings": {"errors"},
    "hypothesis_profile": set(),
    "progress": set(),
    "atomic": set(),
    "lazy": set(),
    "required": {"errors"},
    "options": {"errors", "required"},  # the option table and its conversions
}
_FOUNDATION = {
    "security": {"errors", "findings", "marker_args"},
    "card": {"errors", "keypoints", "security.allowlist"},
    "adapters": {"errors", "card", "security"},
    "data_layouts": {"errors", "keypoint_presets"},
    "data": {"errors", "keypoints", "data_layouts"},
    # metrics imports only the base, so its result arrays can sit under predictions' cache
    "predictions": {"adapters.base", "data", "metrics.detections"},
}
_FEATURES = {
    "metrics": {"errors", "keypoints", "keypoint_presets"},
    "distributed": {"errors", "settings", "adapters.base", "data", "predictions"},
    "robustness": {
        "errors",
        "keypoints",
        "marker_args",
        "adapters.base",
        "data",
        "predictions",
        "metrics",
        "distributed.sweep",
    },  # fmt: skip
    "bench": {
        "errors",
        "findings",
        "marker_args",
        "adapters",
        "data",
        "keypoints",
        "predictions",
        "metrics.oks",
        "robustness.oks",
        "security.guarded_model",
    },  # fmt: skip
    "provenance": {
        "errors",
        "findings",
        "card",
        "keypoints",
        "marker_args",
        "security",
        "adapters",
    },  # fmt: skip
    "policy": {TOP, "errors", "findings", "card", "provenance.digests"},
    "gates": {"errors", "findings", "marker_args", "bench.thresholds"},
    "report": {"errors", "environment", "data", "metrics.oks", "gates", "header"},
    # the evaluators are named by string, imported by importlib
    "checks": {"errors", "findings", "provenance.unpinned"},
    "strategies": {"robustness", "hypothesis_profile"},
    "header": {"errors", "bench.load"},  # the run's header line, with the machine's load
    "cli": {"errors"},  # subcommands are named by string, imported by importlib
}
_BELOW_SESSION = {**_BASE, **_FOUNDATION, **_FEATURES}
ALLOWED: dict[str, set[str]] = {
    **_BELOW_SESSION,
    "session": set(_BELOW_SESSION) - {"cli"},
    "plugin": set(_BELOW_SESSION) - {"cli"} | {"session"},
    "scaffold": set(_BELOW_SESSION) - {"cli"} | {"session"},  # kpmodel init runs a session
}
SESSION_USERS = {"plugin", "scaffold"}
# What any module may import (they import nothing of the project): the progress lines of long
# steps, writing a file atomically, a package's names imported on first use.
EVERYONE = {"progress", "atomic", "lazy"}

# Modules that may form a runtime import circle inside their package, each with its reason
# (none: the last one, ultralytics adapter <-> onnx_layout, went when the card's kwargs moved to
# ultralytics/kwargs.py and the head decoding to ultralytics/postprocess.py).
MODULE_CIRCLE_EXCEPTIONS: dict[frozenset[str], str] = {}

# Subpackages whose docstring limits what they import inside their own package.
INNER_RULES: dict[str, set[str]] = {
    "security.pickle_scan": {"security.allowlist", "security.report"},
    "robustness.ops": {"robustness.geometry", "robustness.kinds"},  # kinds: pure data
    "report.sections": {"report.markup", "report.page", "report.verdicts", "report.plots"},
}


def _matches(target: str, allowed: Iterable[str]) -> bool:
    return any(target == a or target.startswith(a + ".") for a in allowed)


def rule_violations(imports: Iterable[Import], allowed: Mapping[str, set[str]]) -> list[str]:
    """Imports across units that ``allowed`` does not permit, one message each."""
    out = []
    for imp in imports:
        if not imp.project:
            if imp.target in ("pytest", "_pytest") and imp.source != "plugin":
                out.append(f"{imp.where}: imports {imp.target}; only plugin.py may")
            if imp.target in ("torch", "torchvision") and unit(imp.source) == "metrics":
                out.append(f"{imp.where}: metrics imports {imp.target}; it is numpy only")
            continue
        src, dst = unit(imp.source), unit(imp.target)
        if src == dst:
            continue
        if dst == "plugin":
            out.append(f"{imp.where}: imports plugin; nothing imports plugin.py")
        elif dst == "session" and src not in SESSION_USERS:
            out.append(f"{imp.where}: imports session; only plugin.py and scaffold/ do (the rest "
                       "is handed the session)")  # fmt: skip
        elif src not in allowed:
            out.append(f"{imp.where}: {src} has no rule in ALLOWED (add it with its docstring)")
        elif not _matches(imp.target, allowed[src] | EVERYONE):
            may = ", ".join(sorted(allowed[src])) or "nothing of the project"
            out.append(f"{imp.where}: {src} imports {imp.target}; it may import {may}")
    return out


def inner_violations(imports: Iterable[Import], rules: Mapping[str, set[str]]) -> list[str]:
    out = []
    for imp in imports:
        for package, allowed in rules.items():
            if not _matches(imp.source, [package]) or not imp.project:
                continue
            same_unit = unit(imp.target) == unit(package)
            if same_unit and not _matches(imp.target, [package, *allowed]):
                out.append(f"{imp.where}: {package} imports {imp.target}; it may import "
                           f"{', '.join(sorted(allowed))} of {unit(package)}")  # fmt: skip
    return out


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        if a != b:
            graph[a].add(b)
            graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of units/modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def unit_cycles(imports: Iterable[Import]) -> list[list[str]]:
    return cycles((unit(i.source), unit(i.target)) for i in imports if i.project)


def module_cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Runtime circles between modules (``TYPE_CHECKING`` imports never run, so they are out)."""
    return cycles((i.source, i.target) for i in imports if i.project and not i.typing_only)


# -- the package as it is -------------------------------------------------------------------------
IMPORTS = collect()


def test_every_unit_has_a_rule():
    units = {unit(i.source) for i in IMPORTS}
    assert units - set(ALLOWED) == set(), "a new top-level module or package needs its rule"
    assert len(IMPORTS) > 500  # the collector really read the package


def test_imports_follow_the_allowed_directions():
    assert rule_violations(IMPORTS, ALLOWED) == []


def test_subpackages_import_what_their_docstrings_say():
    assert inner_violations(IMPORTS, INNER_RULES) == []


def test_no_circle_between_packages():
    assert unit_cycles(IMPORTS) == []


def test_no_runtime_circle_between_modules_but_the_listed_ones():
    found = {frozenset(c) for c in module_cycles(IMPORTS)}
    assert found - set(MODULE_CIRCLE_EXCEPTIONS) == set()
    assert set(MODULE_CIRCLE_EXCEPTIONS) - found == set(), "an exception no longer needed"


def test_torch_free_packages_stay_torch_free_at_import():
    """The docstrings' "importing it never pulls torch" (plugin start-up depends on it)."""
    names = ["card", "adapters", "adapters.detectron2", "adapters.ultralytics", "metrics",
             "bench", "distributed", "policy", "provenance", "report", "robustness",
             "security", "checks", "gates"]  # fmt: skip
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module('{PACKAGE}.{n}')\n" for n in names)
    code += "print(sorted({'torch', 'pytest'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the checker can fail -------------------------------------------------------------------------
def test_bad_imports_in_a_copy_of_the_package_are_caught(tmp_path):
    copy = tmp_path / PACKAGE
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    oks = copy / "metrics" / "oks.py"
    oks.write_text(oks.read_text() + "\nfrom ..session import KpSession\nimport pytest\n")
    n = oks.read_text().count("\n")
    # a function-level import that closes a circle: report -> metrics -> report
    acc = copy / "metrics" / "accumulate.py"
    acc.write_text(acc.read_text() + "\n\ndef f():\n    from ..report import page\n")
    m = acc.read_text().count("\n")
    imports = collect(copy)
    found = [v for v in rule_violations(imports, ALLOWED) if "/metrics/" in v]
    assert found == [
        f"{PACKAGE}/metrics/accumulate.py:{m}: metrics imports report.page; it may import "
        "errors, keypoint_presets, keypoints",
        f"{PACKAGE}/metrics/oks.py:{n - 1}: imports session; only plugin.py and scaffold/ do "
        "(the rest is handed the session)",
        f"{PACKAGE}/metrics/oks.py:{n}: imports pytest; only plugin.py may",
    ]
    assert unit_cycles(IMPORTS) == []
    assert any({"metrics", "report"} <= set(c) for c in unit_cycles(imports))


def test_rule_checker_on_a_fake_graph():
    fake = [
        Import("metrics.oks", "errors", 1, True, False),
        Import("metrics.oks", "robustness.oks", 2, True, False),
        Import("bench.parity", "robustness.oks", 3, True, False),
        Import("bench.parity", "robustness", 4, True, False),  # the package, not robustness.oks
        Import("card", "plugin", 5, True, False),
        Import("newthing", "errors", 6, True, False),
        Import("report.page", "torch", 7, False, False),
        Import("metrics.oks", "torch", 8, False, False),
    ]
    found = rule_violations(fake, ALLOWED)
    assert [m.split(":")[1] for m in found] == ["2", "4", "5", "6", "8"]
    assert "it may import errors, keypoint_presets, keypoints" in found[0]


def test_cycle_finder_on_a_fake_graph():
    assert cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d")]) == [["a", "b", "c"]]
    assert cycles([("a", "b"), ("b", "c")]) == []
    typing_only = [Import("x.a", "x.b", 1, True, True), Import("x.b", "x.a", 1, True, False)]
    assert module_cycles(typing_only) == []
    package_and_module = [Import("x", "x.a", 1, True, False), Import("x.a", "x", 2, True, False)]
    assert module_cycles(package_and_module) == [["x", "x.a"]]
