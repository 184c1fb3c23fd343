from __future__ import annotations

import json

import pytest

from kp_factories import make_dataset
from pytest_kpmodel.data import iterate_batches, load_dataset
from pytest_kpmodel.errors import DatasetError


def test_loads_and_batches(tmp_path):
    ds = load_dataset(make_dataset(tmp_path, n=5))
    assert len(ds) == 5 and ds.category_id == 1 and ds.num_keypoints == 17
    batches = list(iterate_batches(ds, batch_size=2, num_workers=1))
    assert [idx for idx, _ in batches] == [[0, 1], [2, 3], [4]]
    img = batches[0][1][0]
    assert img.dtype.is_floating_point is False and img.shape == (3, 72, 96)


def test_max_images_changes_digest(tmp_path):
    ann = make_dataset(tmp_path, n=4)
    full, two = load_dataset(ann), load_dataset(ann, max_images=2)
    assert len(two) == 2 and len(two.coco["annotations"]) == 2
    assert full.digest != two.digest


def test_annotations_missing(tmp_path):
    with pytest.raises(DatasetError, match="annotation file not found"):
        load_dataset(tmp_path / "nope.json")


def test_annotations_malformed(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"a.json: not valid JSON"):
        load_dataset(tmp_path / "a.json")


def test_not_keypoint_dataset(tmp_path):
    ann = make_dataset(tmp_path, n=1)
    coco = json.loads(ann.read_text())
    del coco["categories"][0]["keypoints"]
    ann.write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match="not a keypoint dataset"):
        load_dataset(ann)


def test_image_missing(tmp_path):
    ann = make_dataset(tmp_path, n=2)
    (tmp_path / "images" / "0001.jpg").unlink()
    with pytest.raises(DatasetError, match=r"image referenced but missing: .*0001.jpg"):
        load_dataset(ann)


@pytest.mark.parametrize("workers", [0, 1])
def test_image_undecodable(tmp_path, workers):
    ann = make_dataset(tmp_path, n=2)
    (tmp_path / "images" / "0001.jpg").write_bytes(b"not a jpeg")
    ds = load_dataset(ann)
    with pytest.raises(DatasetError, match=r"0001.jpg: image undecodable"):
        list(iterate_batches(ds, batch_size=1, num_workers=workers))


def _write(tmp_path, gt):
    from PIL import Image

    (tmp_path / "images").mkdir(exist_ok=True)
    for im in gt["images"]:
        Image.new("RGB", (8, 6)).save(tmp_path / "images" / im["file_name"])
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(gt))
    return path


def test_area_from_box_fills_only_missing_areas(tmp_path):
    from real_datasets import crowdpose_like

    gt, _ = crowdpose_like(1, num_images=4)
    gt["annotations"][0]["area"] = 123.0
    ann = _write(tmp_path, gt)
    ds = load_dataset(ann, area_from_box=0.53)
    a0, a1 = ds.coco["annotations"][:2]
    assert a0["area"] == 123.0 and a1["area"] == 0.53 * a1["bbox"][2] * a1["bbox"][3]
    n = len(gt["annotations"])
    assert ds.notes == [f"{n - 1} of {n} annotations had no 'area'; they get 0.53 * box w*h "
                        "(area_from_box), as CrowdPose's own evaluation does"]  # fmt: skip
    assert "area" not in load_dataset(ann).coco["annotations"][1]  # only when asked
    assert ds.subset([0, 1]).notes == ds.notes


def test_wholebody_parts_joined_only_for_a_133_keypoint_model(tmp_path):
    from real_datasets import wholebody_like

    from pytest_kpmodel.keypoints import COCO17, COCO_WHOLEBODY133

    gt, _ = wholebody_like(2, num_images=3)
    ann = _write(tmp_path, gt)
    assert load_dataset(ann, keypoints=COCO17).num_keypoints == 17
    ds = load_dataset(ann, keypoints=COCO_WHOLEBODY133)
    assert ds.num_keypoints == 133 and len(ds.coco["annotations"][0]["keypoints"]) == 399
    assert ds.notes[0].startswith("COCO-WholeBody: the 133 keypoints are")
    gt["annotations"][0]["lefthand_kpts"] = [0.0] * 60
    with pytest.raises(DatasetError, match=r"annotations.json: annotation id 1: .*'lefthand_kpts'"):
        load_dataset(_write(tmp_path, gt), keypoints=COCO_WHOLEBODY133)
