"""Flip consistency: an exactly flip-equivariant model scores 1; a missed left/right swap less."""

from __future__ import annotations

import json

import pytest

from pytest_kpmodel.keypoints import COCO17
from pytest_kpmodel.metrics import flip_consistency, flip_results, image_widths
from pytest_kpmodel.metrics.synthetic import make_coco_set

FLIP = COCO17.flip_index()


def test_flip_consistency():
    gt, results = make_coco_set(33, num_images=8)
    widths = image_widths(gt)
    perm = FLIP
    # an exactly flip-equivariant model: its mirrored-image predictions are the mirror of these
    mirrored = flip_results(results, widths, perm)  # mapping is its own inverse
    fc = flip_consistency(
        results, mirrored, widths=widths, flip_index=perm, names=COCO17.names, min_score=0.0
    )
    assert fc.mean_oks == pytest.approx(1.0) and fc.unpaired == fc.unpaired_flipped == 0
    assert fc.pairs == len(results) and all(v == pytest.approx(1.0) for v in fc.per_keypoint)
    # forgetting to swap left and right when mapping back shows up as a lower OKS
    no_swap = flip_results(results, widths, list(range(17)))
    fc2 = flip_consistency(results, no_swap, widths=widths, flip_index=perm, min_score=0.0)
    assert fc2.mean_oks < 0.9
    fc3 = flip_consistency(results, mirrored, widths=widths, flip_index=perm, min_score=0.5)
    assert fc3.pairs == sum(r["score"] >= 0.5 for r in results)
    json.dumps(fc3.to_json())
