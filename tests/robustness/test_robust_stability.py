"""stability.measure and OKS matching."""

from __future__ import annotations

import json

import pytest
import torch
from kp_robust_helpers import BLOB_OFFSETS, blob_image

from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.keypoints import COCO17, KeypointSet
from pytest_kpmodel.robustness import stability
from pytest_kpmodel.robustness.oks import box_iou, greedy_match, oks_matrix
from pytest_kpmodel.robustness.perturbations import Compose, Perturbation

H, W = 72, 96
BOXES = [(20, 10, 44, 60), (50, 14, 70, 66), (30, 8, 52, 62)]


@pytest.fixture(scope="module")
def images():
    return [blob_image(H, W, box, seed=i) for i, box in enumerate(BOXES)]


@pytest.fixture
def clean(blob_model, images):
    return blob_model.predict(images)


def test_oks_matches_the_coco_formula():
    ref = torch.zeros(1, 17, 3, dtype=torch.float64)
    ref[0, :, :2] = torch.rand(17, 2, dtype=torch.float64) * 50
    det = ref.clone()
    det[0, :, 0] += 2.0
    area = torch.tensor([400.0])
    sig = torch.tensor(COCO17.sigmas, dtype=torch.float64)
    expected = torch.exp(-(4.0 / (2 * sig) ** 2 / 400.0 / 2)).mean()
    got = oks_matrix(ref, area, det, COCO17.sigmas)
    assert got.shape == (1, 1)
    assert float(got[0, 0]) == pytest.approx(float(expected), abs=1e-12)
    assert float(oks_matrix(ref, area, ref, COCO17.sigmas)[0, 0]) == 1.0


def test_greedy_match_takes_the_best_pairs_first():
    sim = torch.tensor([[0.9, 0.8], [0.85, 0.1]], dtype=torch.float64)
    assert greedy_match(sim) == [(0, 0, 0.9), (1, 1, 0.1)]
    assert greedy_match(sim, 0.5) == [(0, 0, 0.9)]
    assert greedy_match(torch.zeros(0, 3)) == []
    iou = box_iou(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[5.0, 0, 15, 10]]))
    assert float(iou) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "p",
    [Perturbation("hflip", 1.0), Perturbation.of("translate", 1.0, direction=90.0),
     Compose((Perturbation("hflip", 1.0), Perturbation.of("translate", 1.0, direction=180.0))),
     Perturbation("brightness", 0.0)],
    ids=repr,
)  # fmt: skip
def test_an_equivariant_model_is_perfectly_stable(blob_model, images, clean, p):
    r = stability.measure(blob_model, images, clean, p, COCO17, score_threshold=0.5)
    assert r.num_clean == 3 and r.num_images == 3
    assert r.mean_oks == pytest.approx(1.0, abs=1e-9)
    assert r.recall == 1.0 and r.spurious == 0
    assert all(im.mean_oks == pytest.approx(1.0) for im in r.per_image)


def test_without_the_left_right_swap_a_flip_looks_unstable(blob_model, images, clean):
    """What albumentations-style flipping (points moved, labels kept) would report."""
    no_pairs = KeypointSet(flip_pairs=())
    r = stability.measure(blob_model, images, clean, Perturbation("hflip", 1.0), no_pairs)
    assert r.mean_oks < 0.6


def test_occlusion_over_the_person_degrades_and_is_reported(blob_model, images, clean, tmp_path):
    p = Perturbation.of("occlusion", 5.0, colour=(0.0, 0.0, 0.0), x=0.8, y=0.5)
    r = stability.measure(blob_model, images, clean, p, COCO17, save=tmp_path / "renders")
    assert r.mean_oks is not None and r.mean_oks < 0.99
    assert repr(p) in str(r)
    assert len(r.saved) == 3 and all(path.endswith(".png") for path in r.saved)
    assert (tmp_path / "renders" / "perturbation.txt").read_text().strip() == repr(p)
    from PIL import Image

    with Image.open(r.saved[0]) as im:
        assert im.width == 2 * W + 8 and im.height > H
    json.dumps(r.to_dict())
    assert r.worst(1)[0].mean_oks == min(im.mean_oks for im in r.per_image)


def test_indices_and_batching_do_not_change_the_result(blob_model, images, clean):
    p = Perturbation("gaussian_noise", 3.0, seed=4)
    a = stability.measure(blob_model, images, clean, p, batch_size=1, indices=[10, 11, 12])
    b = stability.measure(blob_model, images, clean, p, batch_size=3, indices=[10, 11, 12])
    assert a.per_image == b.per_image
    assert [im.index for im in a.per_image] == [10, 11, 12]


def test_vanished_people_count_against_recall(images):
    class Vanishing:
        device = torch.device("cpu")

        def predict(self, imgs):
            return [Prediction.empty(17) for _ in imgs]

    kp = torch.zeros(1, 17, 3)
    kp[0, :, :2] = torch.tensor([30.0, 30.0]) + BLOB_OFFSETS * 10
    clean = [Prediction(torch.tensor([[20.0, 20, 40, 40]]), torch.tensor([0.9]),
                        torch.tensor([1]), kp)] * 3  # fmt: skip
    r = stability.measure(Vanishing(), images, clean, Perturbation("contrast", 1.0))
    assert r.mean_oks == 0.0 and r.recall == 0.0 and r.num_clean == 3


def test_low_scores_are_ignored(blob_model, images, clean):
    r = stability.measure(
        blob_model, images, clean, Perturbation("hflip", 1.0), score_threshold=1.0
    )
    assert r.num_clean == 0 and r.mean_oks is None and r.recall is None
    assert "n/a" in str(r)


def test_fixed_sample_is_reproducible():
    assert stability.fixed_sample(100, 5, seed=1) == stability.fixed_sample(100, 5, seed=1)
    assert stability.fixed_sample(3, 5) == [0, 1, 2]
    assert len(set(stability.fixed_sample(100, 10))) == 10


def test_tiny_rcnn_end_to_end(tiny_model, tmp_path):
    from kp_robust_helpers import natural_image

    imgs = [natural_image(64, 80, seed=s) for s in range(2)]
    clean = tiny_model.predict(imgs)
    for p in (Perturbation("hflip", 1.0), Perturbation("gaussian_noise", 2.0)):
        r = stability.measure(tiny_model, imgs, clean, p, COCO17, score_threshold=0.0,
                              save=tmp_path / p.kind)  # fmt: skip
        assert r.num_clean == sum(len(c) for c in clean)
        if r.num_clean:
            assert 0.0 <= r.mean_oks <= 1.0 and 0.0 <= r.recall <= 1.0
        assert len(r.saved) == 2
    ident = stability.measure(
        tiny_model, imgs, clean, Perturbation("hflip", 0.0), score_threshold=0
    )
    if ident.num_clean:
        assert ident.mean_oks == pytest.approx(1.0, abs=1e-5)
