"""Per-keypoint AP/OKS/PCK and coco-analyze error types."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from metrics_reference import mask_to_keypoint, pycoco_eval
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pytest_kpmodel.keypoints import COCO17, COCO_SIGMAS
from pytest_kpmodel.metrics import analysis as metrics_analysis
from pytest_kpmodel.metrics import evaluate
from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.pairs import PairCache
from pytest_kpmodel.metrics.synthetic import flip_index, make_coco_set

SIG = np.asarray(COCO_SIGMAS)
FLIP = COCO17.flip_index()


def person_kps(x0: float, y0: float, scale: float = 100.0) -> np.ndarray:
    """A plausible COCO-17 pose inside [x0, x0 + scale] x [y0, y0 + 2 scale]."""
    rng = np.random.default_rng(int(x0 * 7 + y0))
    pts = np.stack(
        [x0 + rng.uniform(0.1, 0.9, 17) * scale, y0 + rng.uniform(0.1, 0.9, 17) * 2 * scale], 1
    )
    pts[1::2, 0] -= 0.15 * scale  # left keypoints (odd indices) to one side of their right twins
    pts[2::2, 0] = pts[1::2, 0] + 0.3 * scale
    return pts


def gt_of(people: list[np.ndarray], scale: float = 100.0) -> dict:
    anns = []
    for i, pts in enumerate(people):
        kp = np.concatenate([pts, np.full((17, 1), 2.0)], 1).reshape(-1)
        x0, y0 = pts.min(0) - 5
        anns.append(
            {
                "id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                "bbox": [float(x0), float(y0), scale * 1.2, scale * 2.2], "area": scale * scale * 1.3,
                "keypoints": kp.tolist(),
            }
        )  # fmt: skip
    cats = [{"id": 1, "name": "person", "keypoints": list(COCO17.names)}]
    return {
        "images": [{"id": 1, "width": 640, "height": 480}],
        "annotations": anns,
        "categories": cats,
    }


def det_of(pts: np.ndarray, score: float = 0.9) -> dict:
    x0, y0 = pts.min(0)
    w, h = pts.max(0) - pts.min(0)
    kp = np.concatenate([pts, np.ones((17, 1))], 1).reshape(-1)
    return {
        "image_id": 1,
        "category_id": 1,
        "bbox": [float(x0), float(y0), float(w), float(h)],
        "score": score,
        "keypoints": kp.tolist(),
    }


def test_error_types_on_hand_made_cases():
    a, b = person_kps(50, 20), person_kps(300, 30)
    gt = gt_of([a, b])
    area = gt["annotations"][0]["area"]
    sd = np.sqrt(area) * SIG * 2  # one "sigma unit" of distance per keypoint
    jitter = a.copy()
    jitter[:, 0] += sd * 0.8  # ks = exp(-0.32) ~ 0.73
    inverted = a[FLIP]
    swapped = a.copy()
    swapped[9] = b[9]  # left wrist at the other person's left wrist
    missed = a.copy()
    missed[15] += 80.0  # left ankle far from everything
    dets = [
        det_of(p, s)
        for p, s in ((a, 0.9), (jitter, 0.8), (inverted, 0.7), (swapped, 0.6), (missed, 0.5))
    ]
    results = [dict(d, image_id=i + 1) for i, d in enumerate(dets)]
    gt["images"] = [{"id": i + 1, "width": 640, "height": 480} for i in range(5)]
    gt["annotations"] = [
        dict(x, id=10 * i + x["id"], image_id=i + 1) for i in range(5) for x in gt["annotations"]
    ]
    m = evaluate(gt, results, bootstrap=0)
    e = m.keypoint_errors
    assert e.detections == 5
    names = list(COCO17.names)
    # per keypoint: 5 detections each have it labelled
    assert e.count == (5,) * 17
    assert e.counts["jitter"] == (1,) * 17
    # inverted: every paired keypoint is an inversion, the nose (its own mirror) is good
    assert e.counts["inversion"][names.index("left_eye")] == 1 and e.counts["inversion"][0] == 0
    assert e.counts["swap"][names.index("left_wrist")] == 1 and sum(e.counts["swap"]) == 1
    assert e.counts["miss"][names.index("left_ankle")] == 1 and sum(e.counts["miss"]) == 1
    assert e.counts["good"][0] == 4  # perfect, inverted, swapped, missed detections' noses
    assert e.share("inversion", "left_eye") == pytest.approx(0.2)
    js = e.to_json()
    assert js["detections"]["with_inversion"] == pytest.approx(0.2)
    assert sum(
        js["overall"][t] for t in ("good", "jitter", "inversion", "swap", "miss")
    ) == pytest.approx(1.0)


def coco_analyze_reference(gt, results, sigmas, flip):
    """coco-analyze's _find_kpt_errors loop, per detection, on pycocotools' matches."""
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        d = g.loadRes(copy.deepcopy(results))
        ev = COCOeval(g, d, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.params.iouThrs = np.array([0.1])
        ev.params.areaRng = [[32**2, 1e5**2]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
    k = len(sigmas)
    counts = {t: np.zeros(k, int) for t in ("good", "jitter", "inversion", "swap", "miss")}
    for e in filter(None, ev.evalImgs):
        for di, did in enumerate(e["dtIds"]):
            gid = int(e["dtMatches"][0][di])
            if gid == 0 or g.anns[gid]["num_keypoints"] == 0:
                continue
            dt = np.asarray(d.anns[did]["keypoints"]).reshape(k, 3)
            own = g.anns[gid]
            others = [
                a
                for a in g.loadAnns(g.getAnnIds(imgIds=e["image_id"], catIds=[e["category_id"]]))
                if a["id"] != gid
            ]
            rows = [own, *others]
            mats = [np.asarray(a["keypoints"], float).reshape(k, 3) for a in rows]
            mats += [m[flip] for m in mats]
            areas = [a["area"] for a in rows] * 2
            ks = np.array(
                [
                    np.where(
                        m[:, 2] > 0,
                        np.exp(
                            -((dt[:, 0] - m[:, 0]) ** 2 + (dt[:, 1] - m[:, 1]) ** 2)
                            / (np.asarray(sigmas) * 2) ** 2
                            / (ar + np.spacing(1))
                            / 2
                        ),
                        -1,
                    )
                    for m, ar in zip(mats, areas, strict=True)
                ]
            )
            order = [0, *range(1, len(rows)), len(rows), *range(len(rows) + 1, 2 * len(rows))]
            ks = ks[order]
            top, arg = ks.max(0), ks.argmax(0)
            lab = mats[0][:, 2] > 0
            counts["good"] += lab & (top >= 0.85) & (arg == 0)
            counts["jitter"] += lab & (top >= 0.5) & (top < 0.85) & (arg == 0)
            counts["inversion"] += lab & (top >= 0.5) & (arg == len(rows))
            counts["swap"] += lab & (top >= 0.5) & (arg != 0) & (arg != len(rows))
            counts["miss"] += lab & (top < 0.5)
    return counts


@pytest.mark.parametrize("k", [17, 6])
def test_error_types_equal_coco_analyze_loop(k):
    gt, results = make_coco_set(31, num_images=40, num_keypoints=k, crowd_rate=0.1)
    sigmas = list(COCO_SIGMAS) if k == 17 else [0.03, 0.04, 0.04, 0.08, 0.08, 0.1]
    flip = flip_index(k)
    m = evaluate(gt, results, sigmas=sigmas, flip_index=flip, bootstrap=0, per_keypoint=False)
    ref = coco_analyze_reference(gt, results, sigmas, flip)
    for t, c in ref.items():
        assert m.keypoint_errors.counts[t] == tuple(int(x) for x in c), t
    assert sum(m.keypoint_errors.counts[t][0] for t in ref) == m.keypoint_errors.count[0]


def test_perfect_predictions_give_oks_pck_and_ap_of_one():
    gt, _ = make_coco_set(32, num_images=10, crowd_rate=0.0, zero_kp_rate=0.0)
    results = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"]).reshape(17, 3)
        x, y, w, h = a["bbox"]
        kp[kp[:, 2] == 0, :2] = (x + w / 2, y + h / 2)  # unlabelled: somewhere in the box
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "bbox": a["bbox"],
                "score": 0.9,
                "keypoints": kp.reshape(-1).tolist(),
            }
        )
    m = evaluate(gt, results, bootstrap=0)
    assert pytest.approx(1.0) == m.keypoints.AP and pytest.approx(1.0) == m.bbox.AP
    assert m.pck["0.05"] == 1.0 and m.pck["mean_oks"] == pytest.approx(1.0)
    for name in m.per_keypoint:
        row = m.per_keypoint[name]
        assert row["oks"] == pytest.approx(1.0) and row["pck@0.1"] == 1.0
        # one keypoint alone can be closer to a neighbour's: per-keypoint AP may dip below 1
        assert row["ap"] > 0.9
    assert m.keypoint_errors.share("good") == 1.0


def test_pck_uses_distance_against_ground_truth_box_size():
    pts = person_kps(100, 50)
    gt = gt_of([pts])
    size = max(gt["annotations"][0]["bbox"][2:])
    moved = pts.copy()
    moved[0, 0] += 0.07 * size  # nose: beyond 0.05, within 0.1
    moved[5, 1] += 0.15 * size  # left shoulder: beyond 0.1, within 0.2
    m = evaluate(gt, [det_of(moved)], bootstrap=0)
    pk = m.per_keypoint
    assert (pk["nose"]["pck@0.05"], pk["nose"]["pck@0.1"]) == (0.0, 1.0)
    assert (pk["left_shoulder"]["pck@0.1"], pk["left_shoulder"]["pck@0.2"]) == (0.0, 1.0)
    assert m.pck["0.05"] == pytest.approx(15 / 17) and m.pck["0.2"] == 1.0 and m.pck["n"] == 17
    d2 = (0.07 * size) ** 2
    assert pk["nose"]["oks"] == pytest.approx(
        np.exp(-d2 / (2 * gt["annotations"][0]["area"] * (2 * SIG[0]) ** 2))
    )


def test_per_keypoint_ap_equals_pycocotools_on_masked_ground_truth():
    gt, results = make_coco_set(
        11, num_images=25, num_keypoints=4, crowd_rate=0.15, zero_kp_rate=0.2
    )
    sigmas = [0.03, 0.05, 0.08, 0.1]
    inp = prepare(gt, results, sigmas=sigmas)
    ours = metrics_analysis.per_keypoint_ap(PairCache(inp))
    for k in range(4):
        ref = pycoco_eval(mask_to_keypoint(gt, k), results, "keypoints", sigmas)
        assert abs(ours.ap[k] - ref.stats[0]) <= 1e-12
        assert abs(ours.ap50[k] - ref.stats[1]) <= 1e-12
        assert abs(ours.ap75[k] - ref.stats[2]) <= 1e-12
