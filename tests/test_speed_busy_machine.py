"""The speed spec beside CPU-burning neighbours (bounded: tiny models, a few calls): the
relative gate against the base model holds, and an absolute gate that fails names the load
measured while timing."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from kp_factories import make_model
from pytest_kpmodel.bench.load import cores

SMALL = "image_size=(64, 96), warmup=1, iters=6, num_images=2, stage_iters=0"
SPEC = f"""
import pytest

@pytest.mark.kp_bench({SMALL})
@pytest.mark.kp_no_regression(box_ap=None, kp_ap=None, fps=0.5)
def test_not_slower_than_base():
    pass

@pytest.mark.kp_bench({SMALL})
@pytest.mark.kp_thresholds(fps=1e9)
def test_impossibly_fast():
    pass
"""


@pytest.fixture
def burners():
    """One CPU-bound neighbour per core: the cores are oversubscribed while the spec times."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores())]
    time.sleep(0.5)
    yield procs
    for p in procs:
        p.kill()
    for p in procs:
        p.wait(timeout=10)


@pytest.mark.skipif(sys.platform != "linux", reason="load sampling reads /proc")
def test_speed_spec_beside_cpu_burners(pytester, tmp_path_factory, tiny_dataset, burners):
    root = tmp_path_factory.mktemp("busy")
    base = make_model(root / "base", dataset=tiny_dataset, name="base")
    # Same weights, its own card naming the base: the relative gate compares like with like.
    cand = make_model(root / "cand", dataset=tiny_dataset, name="cand",
                      extra=f'[provenance]\nbase = "{base}"\n')  # fmt: skip
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={cand}", "--kp-report=out", "-p", "no:randomly")
    assert all(p.poll() is None for p in burners)  # the neighbours ran throughout
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    # The absolute gate failed and says why the machine was slow.
    result.stdout.fnmatch_lines(["*kp_thresholds: FPS (throughput*", "*machine busy: *"])
    busy = next(line for line in out.splitlines() if "machine busy:" in line)
    assert f"on {cores()} cores during timing" in busy or "other processes used" in busy, busy
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    rel = report["bench_vs_baseline"][0]
    assert rel["rounds"] == 5 and rel["ratio"] >= 0.5, rel
    assert rel["load"]["busy"], rel["load"]
    print(f"ratio {rel['ratio']:.3f} spread {rel['ratio_min']:.3f}-{rel['ratio_max']:.3f}; "
          f"{rel['load']['busy']}")  # fmt: skip
    assert report["bench"][0]["load"]["busy"]
