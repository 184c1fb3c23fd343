"""corruption_eval.run: per corruption/severity metrics, mPC, rPC, determinism, JSON."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from kp_robust_helpers import natural_image

from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.robustness import corruption_eval
from pytest_kpmodel.robustness.kinds import CORRUPTIONS


class DigestModel:
    """Scores encode the exact pixels it saw, so any change in the corrupted images shows."""

    device = torch.device("cpu")
    num_keypoints = 17

    def predict(self, images):
        out = []
        for img in images:
            digest = hashlib.sha256(img.contiguous().numpy().tobytes()).digest()
            score = int.from_bytes(digest[:4], "little") / 2**32
            bright = float(img.mean())
            out.append(Prediction(torch.tensor([[0.0, 0.0, 10.0, 10.0]]),
                                  torch.tensor([score]), torch.tensor([1]),
                                  torch.full((1, 17, 3), bright)))  # fmt: skip
        return out


def evaluate(preds):
    """A stand-in for the metrics module: nested dicts of numbers (and a non-numeric leaf)."""
    return {
        "bbox": {"AP": sum(float(p.scores[0]) for p in preds) / len(preds)},
        "keypoints": {"AP": sum(float(p.keypoints[0, 0, 0]) for p in preds) / len(preds),
                      "per_keypoint": {"nose": 0.5}},
        "engine": "fake",
    }  # fmt: skip


@pytest.fixture(scope="module")
def dataset():
    return [natural_image(40, 48, seed=s) for s in range(3)] + [natural_image(32, 40, seed=9)]


def test_sweep_layout_mpc_and_rpc(dataset):
    seen = []
    r = corruption_eval.run(DigestModel(), dataset, evaluate, severities=(1, 5),
                            batch_size=2, seed=3, progress=lambda c, s, m: seen.append((c, s)))  # fmt: skip
    assert r.corruptions == CORRUPTIONS and r.severities == (1, 5)
    assert seen == [(c, s) for c in CORRUPTIONS for s in (1, 5)]
    assert r.primary == "keypoints.AP"
    values = [r.results[c][s]["keypoints"]["AP"] for c in CORRUPTIONS for s in (1, 5)]
    assert r.mpc == pytest.approx(sum(values) / len(values))
    assert r.rpc == pytest.approx(r.mpc / r.clean["keypoints"]["AP"])
    assert r.mPC["bbox"]["AP"] == pytest.approx(
        sum(r.results[c][s]["bbox"]["AP"] for c in CORRUPTIONS for s in (1, 5)) / 30
    )
    assert r.rPC["keypoints"]["per_keypoint"]["nose"] == pytest.approx(1.0)
    assert r.per_corruption["fog"]["keypoints"]["AP"] == pytest.approx(
        (r.results["fog"][1]["keypoints"]["AP"] + r.results["fog"][5]["keypoints"]["AP"]) / 2
    )
    doc = json.loads(json.dumps(r.to_dict()))
    assert set(doc) >= {"clean", "results", "mPC", "rPC", "mpc", "rpc", "severities", "seed",
                        "corruptions", "per_corruption", "timing_s", "num_images"}  # fmt: skip
    assert doc["results"]["gaussian_noise"]["5"]["engine"] == "fake"
    assert doc["timing_s"]["corrupt"] > 0 and doc["timing_s"]["inference"] > 0
    assert "rPC" in str(r) and "gaussian_noise" in str(r)


def test_deterministic_for_a_seed_whatever_the_batch_size(dataset):
    kw = dict(severities=(2,), corruptions=("shot_noise", "snow", "glass_blur"))
    a = corruption_eval.run(DigestModel(), dataset, evaluate, batch_size=1, seed=7, **kw)
    b = corruption_eval.run(DigestModel(), dataset, evaluate, batch_size=4, seed=7, **kw)
    c = corruption_eval.run(DigestModel(), dataset, evaluate, batch_size=4, seed=8, **kw)
    assert a.results == b.results
    assert a.results != c.results


def test_clean_metrics_are_reused_and_inputs_checked(dataset):
    clean = {"keypoints": {"AP": 0.5}, "bbox": {"AP": 0.0}}
    r = corruption_eval.run(DigestModel(), dataset[:1], evaluate, severities=(1,),
                            corruptions=("contrast",), clean_metrics=clean)  # fmt: skip
    assert r.clean == clean
    assert r.rPC["bbox"]["AP"] is None  # clean value 0: no ratio
    with pytest.raises(ValueError, match="severities must be integers 1-5"):
        corruption_eval.run(DigestModel(), dataset, evaluate, severities=(0,))
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        corruption_eval.run(DigestModel(), dataset, evaluate, corruptions=("rain",))


def test_lazy_datasets_of_pairs_are_read_batch_by_batch(dataset):
    class Lazy:
        reads = 0

        def __len__(self):
            return len(dataset)

        def __getitem__(self, i):
            Lazy.reads += 1
            return dataset[i], {"image_id": i}

    r = corruption_eval.run(DigestModel(), Lazy(), evaluate, severities=(1,),
                            corruptions=("contrast",))  # fmt: skip
    direct = corruption_eval.run(DigestModel(), dataset, evaluate, severities=(1,),
                                 corruptions=("contrast",))  # fmt: skip
    assert r.results == direct.results and Lazy.reads == 2 * len(dataset)
    with pytest.raises(ValueError, match="expected a CHW float tensor"):
        corruption_eval.run(DigestModel(), [torch.zeros(3, 8, 8, dtype=torch.uint8)], evaluate,
                            severities=(1,), corruptions=("contrast",), clean_metrics={})  # fmt: skip


def test_tiny_rcnn_runs_the_suite(tiny_model):
    imgs = [natural_image(64, 64, seed=1)]

    def count(preds):
        return {"kp_ap": sum(len(p) for p in preds) / 20.0}

    r = corruption_eval.run(tiny_model, imgs, count, severities=(3,), corruptions=("snow",))
    assert r.primary == "kp_ap"
    assert set(r.results) == {"snow"}
    json.dumps(r.to_dict())


def test_the_sweep_keeps_no_buffer_after_it(dataset):
    from pytest_kpmodel.robustness.ops import apply, context

    kw = dict(severities=(2,), corruptions=("glass_blur", "defocus_blur", "shot_noise"))
    seen = []

    def progress(c, s, m):
        seen.append(context._kept_bytes() + len(apply._SCRATCH.__dict__.get("batches", {})))

    corruption_eval.run(DigestModel(), dataset, evaluate, batch_size=2, seed=1,
                        progress=progress, **kw)  # fmt: skip
    assert max(seen) > 0  # the kernels kept buffers between their calls
    assert context._kept_bytes() == 0 and not apply._SCRATCH.__dict__
