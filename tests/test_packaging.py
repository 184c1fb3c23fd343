"""The package as users get it: ``python -m build`` gives an sdist and a wheel; the wheel,
installed into a fresh venv, runs ``kpmodel --help``, is listed by ``pytest --version
--version`` and runs an example-suite file; the extras; the header names the engine ``auto``
chose when a faster one is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from pytest_kpmodel.metrics import engines

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "example_suite" / "models" / "kp-tiny-mod" / "kpmodel.toml"


def test_extras_cover_the_optional_engines_and_onnx():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = {req.split(">")[0].split("=")[0] for req in extras["fast"]}
    # every faster exact engine "auto" may pick, and nothing else
    assert names == {e for e in engines.ENGINES if e != "pycocotools"}
    assert {req.split(">")[0] for req in extras["onnx"]} >= {"onnx", "onnxruntime"}
    assert extras["all"] == ["pytest-kpmodel[fast,onnx]"]


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd}: rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_wheel_builds_installs_and_runs(tmp_path):
    # A copy of what the sdist is built from: the build writes build/ and *.egg-info beside it.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pytest_kpmodel", src / "pytest_kpmodel",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    # --no-isolation: build with this venv's setuptools, no download
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist"),
          str(src)], tmp_path)  # fmt: skip
    wheels = list((tmp_path / "dist").glob("pytest_kpmodel-*-py3-none-any.whl"))
    assert len(wheels) == 1 and list((tmp_path / "dist").glob("pytest_kpmodel-*.tar.gz"))
    with zipfile.ZipFile(wheels[0]) as whl:
        names = set(whl.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(meta).decode()
        entry_points = whl.read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert {"pytest_kpmodel/py.typed", "pytest_kpmodel/report/style.css"} <= names
    assert "kpmodel = pytest_kpmodel.plugin" in entry_points
    assert "kpmodel = pytest_kpmodel.cli:main" in entry_points
    for extra in ("fast", "onnx", "all"):
        assert f"Provides-Extra: {extra}" in metadata

    # A fresh venv with the wheel alone; torch and the other dependencies are this venv's,
    # seen through a .pth (installing them again would download gigabytes).
    fresh = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], tmp_path)
    py = fresh / "bin" / "python"
    purelib = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
        ).strip()  # fmt: skip
    )
    (purelib / "_kp_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
          "--quiet", str(wheels[0])], tmp_path)  # fmt: skip

    where = _run([str(py), "-c", "import pytest_kpmodel; print(pytest_kpmodel.__file__)"], tmp_path)
    assert where.strip().startswith(str(purelib)), where  # the wheel's copy, not the checkout
    help_text = _run([str(fresh / "bin" / "kpmodel"), "--help"], tmp_path)
    for command in ("init", "card", "scan", "sign", "verify", "report"):
        assert command in help_text
    version = _run([str(py), "-m", "pytest", "--version", "--version"], tmp_path)
    assert f"pytest-kpmodel-0.1.0 at {purelib}" in version, version
    # One file of the example suite, from the installed wheel (cwd outside the checkout)
    spec = tmp_path / "spec"
    spec.mkdir()
    shutil.copy(ROOT / "example_suite" / "test_license.py", spec)
    out = _run([str(py), "-m", "pytest", "-p", "no:cacheprovider", f"--kp-model={CARD}",
                str(spec), "-q"], tmp_path)  # fmt: skip
    assert "passed" in out and "failed" not in out, out


def test_header_names_the_engine_auto_chose(pytester, tiny_card, monkeypatch):
    pytester.makepyfile("def test_x(kp_card):\n    pass\n")
    monkeypatch.setattr(engines, "_installed", lambda name: name == "pycocotools")
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    result.stdout.fnmatch_lines(
        [
            "kpmodel: metrics engine auto -> pycocotools (about 40x slower than hotcoco on a "
            "COCO-sized set): hotcoco, faster-coco-eval not installed; pip install "
            "'pytest-kpmodel[fast]' for the faster exact engines"
        ]
    )
    monkeypatch.setattr(engines, "_installed", lambda name: True)
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    assert "metrics engine auto" not in result.stdout.str()
    named = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-metrics-engine=pycocotools")
    assert "metrics engine auto" not in named.stdout.str()
