"""benchmarks/gpu_check.sh without a GPU: it parses, every script, card and test it names
exists, and every flag it passes a benchmark is one that benchmark accepts. (Its run on a GPU is
the script's own job.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
TEXT = SCRIPT.read_text()


def _commands() -> dict[str, list[str]]:
    """benchmark file -> the flags the script passes it (continuation lines joined)."""
    joined = TEXT.replace("\\\n", " ")
    out: dict[str, list[str]] = {}
    for m in re.finditer(r'"\$PY" (benchmarks/\w+\.py)([^\n]*)', joined):
        out[m.group(1)] = re.findall(r"(--[a-z][a-z-]*)", m.group(2))
    return out


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
def test_the_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_path_it_names_exists():
    commands = _commands()
    assert set(commands) == {
        "benchmarks/timing_fidelity.py",
        "benchmarks/timing_cuda_events.py",
        "benchmarks/eval_pipeline.py",
        "benchmarks/parity_bounded.py",
    }
    for path in commands:
        assert (ROOT / path).is_file(), path
    card = re.search(r"^CARD=(\S+)$", TEXT, re.M).group(1)
    assert (ROOT / card).is_file()
    assert "def test_fits_in_gpu_memory" in (ROOT / "example_suite/test_speed.py").read_text()
    assert "kp_thresholds(vram_mib=" in (ROOT / "example_suite/test_speed.py").read_text()


@pytest.mark.parametrize("path", sorted(_commands()))
def test_every_flag_is_accepted(path):
    flags = _commands()[path]
    help_text = subprocess.run(
        [sys.executable, str(ROOT / path), "--help"], capture_output=True, text=True,
        check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    for flag in flags:
        assert flag in help_text, (path, flag)


def test_the_pytest_options_it_passes_exist(pytester):
    used = set(re.findall(r"(--kp-[a-z-]+|--benchmark-[a-z-]+)=", TEXT))
    assert used >= {"--kp-model", "--kp-device", "--kp-precision"}
    result = pytester.runpytest("--help")
    for option in used:
        assert option in result.stdout.str(), option
