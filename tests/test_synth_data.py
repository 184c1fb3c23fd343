"""tools/synth_data.py: deterministic, valid COCO person-keypoint data."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from tool_modules import load_tool

from pytest_kpmodel.keypoints import COCO_NAMES, COCO_SKELETON

ROOT = Path(__file__).resolve().parents[1]

synth = load_tool("synth_data")

W, H = 192, 144


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth")
    data = synth.write_dataset(out, num_images=12, seed=3, width=W, height=H)
    return out, data


def test_same_seed_gives_identical_bytes(tmp_path, dataset):
    out, _ = dataset
    again = tmp_path / "again"
    synth.main(["--out", str(again), "--num-images", "12", "--seed", "3",
                "--width", str(W), "--height", str(H)])  # fmt: skip
    assert (again / "annotations.json").read_bytes() == (out / "annotations.json").read_bytes()
    for f in sorted((out / "images").iterdir())[:3]:
        assert (again / "images" / f.name).read_bytes() == f.read_bytes()


def test_other_seed_differs():
    a_px, a_anns = synth.render(1, 0, W, H)
    b_px, b_anns = synth.render(2, 0, W, H)
    assert not np.array_equal(a_px, b_px)
    # An image depends on (seed, index) only, not on how many images precede it.
    c_px, c_anns = synth.render(1, 0, W, H)
    assert np.array_equal(a_px, c_px) and a_anns == c_anns


def test_categories_are_coco_person():
    (cat,) = synth.categories()
    assert cat["id"] == 1 and cat["name"] == "person"
    assert cat["keypoints"] == list(COCO_NAMES)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in COCO_SKELETON]
    assert min(min(e) for e in cat["skeleton"]) == 1


def test_annotations_are_consistent(dataset):
    out, data = dataset
    assert len(data["images"]) == 12
    assert data["annotations"], "twelve images without a single person"
    ids = [a["id"] for a in data["annotations"]]
    assert len(set(ids)) == len(ids)
    image_ids = {im["id"] for im in data["images"]}
    for im in data["images"]:
        assert (out / "images" / im["file_name"]).is_file()
        assert (im["width"], im["height"]) == (W, H)
    for a in data["annotations"]:
        assert a["image_id"] in image_ids
        assert a["category_id"] == 1 and a["iscrowd"] == 0
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= W and y + h <= H
        # Area is the visible mask, not the box: positive, at most the box, less for a person.
        assert 0 < a["area"] <= w * h
        kp = np.array(a["keypoints"], dtype=float).reshape(17, 3)
        v = kp[:, 2]
        assert set(np.unique(v)) <= {0, 1, 2}
        assert a["num_keypoints"] == int((v > 0).sum())
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)
        assert np.all(inside[v > 0]), "a labelled keypoint lies outside the image"
        assert np.all(kp[v == 0, :2] == 0), "v=0 keypoints must have x = y = 0"
        # Visible keypoints sit on the visible figure, so inside its box (half a pixel slack).
        vis = kp[v == 2]
        assert np.all(vis[:, 0] >= x - 0.5) and np.all(vis[:, 0] <= x + w + 0.5)
        assert np.all(vis[:, 1] >= y - 0.5) and np.all(vis[:, 1] <= y + h + 0.5)
    areas = np.array([a["area"] for a in data["annotations"]], dtype=float)
    boxes = np.array([a["bbox"][2] * a["bbox"][3] for a in data["annotations"]], dtype=float)
    assert np.all(areas < boxes), "a thin-limbed figure never fills its whole box"


def test_visibility_flags_all_occur():
    flags = set()
    for i in range(20):
        for a in synth.render(11, i, W, H)[1]:
            flags |= set(a["keypoints"][2::3])
    assert flags == {0, 1, 2}


def test_loads_in_pycocotools(dataset):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out, data = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(out / "annotations.json"))
        # Ground truth as detections scores a perfect match in both iou types.
        dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0,
                 "keypoints": a["keypoints"]} for a in data["annotations"]]  # fmt: skip
        for iou_type in ("bbox", "keypoints"):
            ev = COCOeval(gt, gt.loadRes(dets), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert ev.stats[0] == pytest.approx(1.0)
    assert len(gt.getAnnIds()) == len(data["annotations"])


def test_shipped_val_set_matches_its_recorded_seed():
    ann = ROOT / "example_suite" / "data" / "val" / "annotations.json"
    if not ann.is_file():
        pytest.skip("example_suite/data/val not generated yet")
    info = json.loads(ann.read_text())["info"]
    # Re-render the first image from the recorded seed and compare its labels.
    _, anns = synth.render(info["seed"], 0, info["width"], info["height"])
    data = json.loads(ann.read_text())
    first = [a for a in data["annotations"] if a["image_id"] == 1]
    assert [a["keypoints"] for a in first] == [a["keypoints"] for a in anns]
    assert [a["bbox"] for a in first] == [a["bbox"] for a in anns]
