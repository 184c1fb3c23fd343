"""The numpy per-image evaluation equals pycocotools' evalImgs bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_reference import assert_matches_evalimgs, case, pair_oks, pycoco_eval

from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.pairs import PairCache


@pytest.mark.parametrize(
    "name", ["coco17", "custom5_two_categories", "ties_many_dets", "empty_images_subset"]
)
def test_per_image_evaluation_equals_evalimgs(name):
    gt, results, sigmas, ids = case(name)
    inp = prepare(gt, results, sigmas=sigmas, image_ids=ids)
    cache = PairCache(inp)
    lay = cache.layout(inp.cat_ids[0], 20)
    assert np.array_equal(cache.oks(inp.cat_ids[0], 20), pair_oks(inp, lay))
    for iou_type in ("bbox", "keypoints"):
        assert_matches_evalimgs(cache, pycoco_eval(gt, results, iou_type, sigmas, ids), iou_type)
