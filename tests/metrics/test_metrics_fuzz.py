"""Hypothesis fuzz: small adversarial COCO sets (grid coordinates, so IoU/OKS and score ties
are common; crowds, zero-keypoint and boundary-area ground truths) give pycocotools' stats
with every installed engine and with the numpy per-image evaluation."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metrics_reference import assert_matches_evalimgs, pycoco_eval

from pytest_kpmodel.metrics import bootstrap as metrics_bootstrap
from pytest_kpmodel.metrics.engines import available_engines, run_engine
from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.pairs import PairCache

K = 3
SIGMAS = [0.05, 0.08, 0.11]
GRID = st.sampled_from([0.0, 8.0, 16.0, 32.0])
SIZE = st.sampled_from([8.0, 16.0, 32.0, 96.0])


@st.composite
def person(draw, image_id: int, gt: bool):
    x, y, w, h = draw(GRID), draw(GRID), draw(SIZE), draw(SIZE)
    kps = []
    for _ in range(K):
        kx = x + draw(st.sampled_from([0.0, 0.5, 1.0])) * w
        ky = y + draw(st.sampled_from([0.0, 0.5, 1.0])) * h
        v = draw(st.sampled_from([0, 1, 2])) if gt else 1.0
        kps += [kx if v or not gt else 0.0, ky if v or not gt else 0.0, v]
    ann = {
        "image_id": image_id,
        "category_id": draw(st.sampled_from([1, 1, 2])),
        "bbox": [x, y, w, h],
    }
    if gt:
        ann["area"] = draw(st.sampled_from([w * h * 0.5, 32.0**2, 96.0**2, w * h * 0.9]))
        ann["iscrowd"] = int(draw(st.integers(0, 5)) == 0)
        ann["num_keypoints"] = sum(1 for v in kps[2::3] if v > 0)
    else:
        ann["score"] = draw(st.sampled_from([0.1, 0.5, 0.9, 0.95]))
    ann["keypoints"] = kps
    return ann


@st.composite
def coco_sets(draw):
    n_img = draw(st.integers(1, 4))
    anns, results = [], []
    for i in range(1, n_img + 1):
        for a in draw(st.lists(person(i, True), max_size=4)):
            anns.append({**a, "id": len(anns) + 1})
        results += draw(st.lists(person(i, False), max_size=6))
    cats = [{"id": c, "name": f"c{c}", "keypoints": ["a", "b", "c"]} for c in (1, 2)]
    gt = {
        "images": [{"id": i, "width": 200, "height": 200} for i in range(1, n_img + 1)],
        "annotations": anns,
        "categories": cats,
    }
    return gt, results


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coco_sets())
def test_fuzz_engines_and_matching_equal_pycocotools(data):
    gt, results = data
    inp = prepare(gt, results, sigmas=SIGMAS, allow_box_area=True)
    refs = {t: pycoco_eval(gt, results, t, SIGMAS) for t in ("bbox", "keypoints")}
    for engine in available_engines():
        for t, run in run_engine(engine, inp, ["bbox", "keypoints"]).items():
            assert np.all(np.abs(run.stats - refs[t].stats) <= 1e-9), (
                engine,
                t,
                run.stats,
                refs[t].stats,
            )
    cache = PairCache(inp)
    for t, ref in refs.items():
        assert_matches_evalimgs(cache, ref, t)
    for t, ivs in metrics_bootstrap.bootstrap(
        inp, ["bbox", "keypoints"], replicates=2, cache=cache
    ).items():
        for j, stat in enumerate(("AP", "AP50", "AP75")):
            assert abs(ivs[stat].estimate - refs[t].stats[j]) <= 1e-12, (t, stat)
