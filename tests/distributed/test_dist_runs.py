"""An accuracy + corruption spec run three ways on the same tiny model and data: one process,
``torchrun --nproc_per_node=2`` (gloo, CPU) and ``pytest -n 2``; the reports' metrics, the
corruption sweep and every rank's/worker's ``kp_eval`` must be identical, and the prediction
cache must hold one entry, under the one-process key, computed once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from dist_helpers import explain, make_varied_dataset, run, torchrun

from kp_factories import make_model

pytestmark = pytest.mark.slow

SPEC = """
import hashlib
import json
import os

import pytest

OUT = os.environ["KP_SPEC_OUT"]


def _who():
    return os.environ.get("PYTEST_XDIST_WORKER") or ("rank" + os.environ.get("RANK", "-single"))


def _write(name, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{name}-{_who()}.json"), "w") as f:
        json.dump(data, f, sort_keys=True, default=str)


@pytest.mark.kp_thresholds(box_ap=0.01, kp_ap=0.01)
def test_gates():
    pass


@pytest.mark.parametrize("part", ["a", "b", "c"])
def test_eval(kp_eval, kp_predictions, part):
    h = hashlib.sha256()
    for p in kp_predictions.predictions:
        for t in (p.boxes, p.scores, p.labels, p.keypoints):
            h.update(t.numpy().tobytes())
    _write(f"eval{part}", {"metrics": kp_eval.to_json(), "predictions": h.hexdigest(),
                           "from_cache": kp_predictions.from_cache})


@pytest.mark.kp_corruptions(corruptions=["gaussian_noise", "contrast"], severities=[1, 3],
                            max_images=5, batch_size=2)
def test_corruption(kp_corruption_eval):
    result = kp_corruption_eval.to_dict()
    result.pop("timing_s")
    _write("corruption", result)
"""

# The runtime guard blocks ctypes while the model loads on the CPU, and torchvision dlopens its
# native ops on first import: import it before (as tests/conftest.py does for the whole suite).
CONFTEST = "import torchvision.models.detection  # noqa: F401\n"
ARGS = ("--kp-max-images=7", "--kp-batch-size=2", "--kp-report=report", "-p", "no:randomly")


@pytest.fixture(scope="module")
def model_card(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dist-model")
    ann = make_varied_dataset(root / "data", n=8)
    return make_model(root / "model", dataset=ann)


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_spec.py").write_text(SPEC)
    return root


def _results(root: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "out").glob("*.json"))}


def _cache_entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob(".pytest_cache/**/predictions/*.npz"))


def _report(root: Path) -> dict:
    return json.loads((root / "report" / "kp-report.json").read_text())


def test_torchrun_and_xdist_match_one_process(tmp_path, model_card):
    kp = f"--kp-model={model_card}"
    single = _project(tmp_path / "single")
    proc = run([sys.executable, "-m", "pytest", kp, *ARGS], single,
               KP_SPEC_OUT=str(single / "out"))  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    ref = _report(single)
    ref_eval = _results(single)["evala-rank-single"]
    assert 0 < ref["metrics"]["keypoints"]["AP"] < 1 and 0 < ref["metrics"]["bbox"]["AP"] < 1
    assert len(_cache_entries(single)) == 1

    # torchrun: 2 ranks, gloo; only rank 0 reports and prints the kpmodel summary.
    dist = _project(tmp_path / "torchrun")
    proc = run(torchrun(2, "-m", "pytest", kp, *ARGS), dist, KP_SPEC_OUT=str(dist / "out"))
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.count("5 passed") == 2, explain(proc)  # pytest's output is per rank
    assert proc.stdout.count("kpmodel: report written to") == 1, explain(proc)
    report = _report(dist)
    assert report["metrics"] == ref["metrics"]
    assert (
        report["robustness"]["corruption"]["results"] == ref["robustness"]["corruption"]["results"]
    )
    assert report["robustness"]["corruption"]["mPC"] == ref["robustness"]["corruption"]["mPC"]
    assert [c["gates"] for c in report["checks"]] == [c["gates"] for c in ref["checks"]]
    results = _results(dist)
    for rank in ("rank0", "rank1"):
        for part in "abc":
            assert results[f"eval{part}-{rank}"]["metrics"] == ref_eval["metrics"], rank
            assert results[f"eval{part}-{rank}"]["predictions"] == ref_eval["predictions"], rank
        assert results[f"corruption-{rank}"] == _results(single)["corruption-rank-single"], rank
    # Same key as the one-process run (the merged set is the one-process set); rank 0 wrote it.
    assert _cache_entries(dist) == _cache_entries(single)

    # xdist: 2 workers share the cache folder: one computes the entry, the other waits and reads.
    xd = _project(tmp_path / "xdist")
    proc = run([sys.executable, "-m", "pytest", kp, *ARGS, "-n", "2"], xd,
               KP_SPEC_OUT=str(xd / "out"))  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    assert _cache_entries(xd) == _cache_entries(single)
    results = _results(xd)
    workers = {name.split("-", 1)[1] for name in results if name.startswith("eval")}
    assert workers == {"gw0", "gw1"}, results.keys()
    computed = {w for w in workers for part in "abc"
                if not results.get(f"eval{part}-{w}", {"from_cache": True})["from_cache"]}  # fmt: skip
    assert len(computed) == 1, results  # the other worker read the entry the first one wrote
    for name, r in results.items():
        if name.startswith("eval"):
            assert (
                r["metrics"] == ref_eval["metrics"] and r["predictions"] == ref_eval["predictions"]
            )
    report = _report(xd)  # the controller's, from the workers' checks and sections
    assert report["metrics"] == ref["metrics"]
    assert (
        report["robustness"]["corruption"]["results"] == ref["robustness"]["corruption"]["results"]
    )
    assert sorted(c["nodeid"] for c in report["checks"]) == ["test_spec.py::test_gates"]
