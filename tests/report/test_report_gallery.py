"""Gallery drawing and ranking on tiny images with known keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.keypoints import KeypointSet
from pytest_kpmodel.report import gallery
from pytest_kpmodel.report.gallery import (
    CENTRE,
    GT,
    LEFT,
    PRED_BOX,
    RIGHT,
    image_stats,
    render_gallery,
)

# A four-point "person": a head, two hands and a hip; left arm, right arm, spine.
KS = KeypointSet(
    names=("head", "left_hand", "right_hand", "hip"),
    flip_pairs=(("left_hand", "right_hand"),),
    sigmas=(0.05, 0.05, 0.05, 0.05),
    skeleton=((1, 3), (2, 3), (0, 3)),
)
PERSON = np.array([[100.0, 30.0, 2], [140.0, 90.0, 2], [60.0, 90.0, 2], [100.0, 120.0, 2]])
BOX = [50.0, 20.0, 150.0, 140.0]  # xyxy


def ann(kp: np.ndarray, box=BOX, ann_id: int = 1) -> dict:
    x1, y1, x2, y2 = box
    return {"id": ann_id, "image_id": 1, "category_id": 1, "iscrowd": 0,
            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": 0.6 * (x2 - x1) * (y2 - y1),
            "keypoints": kp.reshape(-1).tolist(), "num_keypoints": int((kp[:, 2] > 0).sum())}  # fmt: skip


def pred(kps: list[np.ndarray], boxes: list[list[float]], scores: list[float]) -> Prediction:
    k = torch.zeros((len(kps), 4, 3))
    for i, kp in enumerate(kps):
        k[i, :, :2] = torch.tensor(kp[:, :2], dtype=torch.float32)
        k[i, :, 2] = 1.0
    return Prediction(torch.tensor(boxes).reshape(-1, 4), torch.tensor(scores, dtype=torch.float32),
                      torch.ones(len(kps), dtype=torch.int64), k)  # fmt: skip


def black(h: int = 150, w: int = 200) -> torch.Tensor:
    return torch.zeros((3, h, w), dtype=torch.uint8)


def near(pixel, colour, tol: int = 10) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, colour, strict=False))


def near_any(img: np.ndarray, x: int, y: int, colour, r: int = 1) -> bool:
    """Some pixel of the (2r+1)^2 window around (x, y) has ``colour`` (for 1-pixel lines)."""
    window = img[y - r : y + r + 1, x - r : x + r + 1].reshape(-1, 3)
    return any(near(p, colour) for p in window)


def midpoint(kp: np.ndarray, a: int, b: int, scale: float = 1.0) -> tuple[int, int]:
    return round((kp[a, 0] + kp[b, 0]) / 2 * scale), round((kp[a, 1] + kp[b, 1]) / 2 * scale)


def test_skeleton_lines_are_drawn_where_the_keypoints_are(tmp_path):
    other = PERSON.copy()  # a second, smaller person on the right nobody detected: green only
    other[:, 0] = 0.4 * PERSON[:, 0] + 125
    other[:, 1] = 0.5 * PERSON[:, 1] + 60
    gt = [[ann(PERSON), ann(other, [140.0, 65.0, 195.0, 130.0], 2)]]
    preds = [pred([PERSON], [BOX], [0.9])]
    (a,) = render_gallery([black()], gt, preds, KS, tmp_path, n=1, fmt="png", min_side=64)
    assert (
        a["kind"] == "gallery"
        and a["path"].startswith("images/gallery-0")
        and a["path"].endswith(".png")
    )
    assert a["meta"]["scale"] == 1.0 and a["meta"]["found"] == 1 and a["meta"]["missed"] == 1
    img = np.asarray(Image.open(tmp_path / a["path"]).convert("RGB"))
    assert img.shape == (150, 200, 3)
    x, y = midpoint(PERSON, 1, 3)
    assert near(img[y, x], LEFT), img[y, x]  # left hand - hip: a left limb
    x, y = midpoint(PERSON, 2, 3)
    assert near(img[y, x], RIGHT), img[y, x]
    x, y = midpoint(PERSON, 0, 3)
    assert near(img[y, x], CENTRE), img[y, x]
    x, y = midpoint(other, 1, 3)
    assert near_any(img, x, y, GT)  # the missed person's ground truth, thin lines
    assert near(img[60, 50], PRED_BOX) and near(img[60, 150], PRED_BOX)  # box sides
    assert near(img[5, 5], (0, 0, 0)) and near(img[75, 185], (0, 0, 0))  # nothing elsewhere


def test_large_images_are_scaled_and_the_drawing_follows(tmp_path):
    big = torch.zeros((3, 600, 800))  # float image in [0, 1]
    kp = PERSON * [4, 4, 1]
    (a,) = render_gallery([big], [[ann(kp, [x * 4 for x in BOX])]], [pred([kp], [[x * 4 for x in BOX]], [0.9])],
                          KS, tmp_path, fmt="png")  # fmt: skip
    assert a["meta"]["scale"] == pytest.approx(512 / 800)
    img = np.asarray(Image.open(tmp_path / a["path"]).convert("RGB"))
    assert img.shape == (384, 512, 3)
    x, y = midpoint(kp, 1, 3, a["meta"]["scale"])
    assert near(img[y, x], LEFT, 30)


def test_worst_images_come_first(tmp_path):
    jittered = PERSON.copy()
    jittered[:, :2] += 3
    far = PERSON.copy()
    far[:, :2] += 25
    gt = [[ann(PERSON)], [ann(PERSON)], [], [ann(PERSON)], [ann(PERSON)]]
    preds = [
        pred([PERSON], [BOX], [0.9]),  # perfect
        pred([jittered], [BOX], [0.9]),  # found, lower OKS
        pred([PERSON], [BOX], [0.8]),  # no ground truth: one false positive
        pred([far], [BOX], [0.9]),  # missed (OKS < 0.5) and a false positive
        pred([PERSON], [BOX], [0.1]),  # below the score threshold: missed, nothing kept
    ]
    stats = [image_stats(g, p, KS.sigmas) for g, p in zip(gt, preds, strict=True)]
    assert stats[0]["recall"] == 1.0 and stats[0]["mean_oks"] == pytest.approx(1.0)
    assert (
        stats[3]["recall"] == 0.0 and stats[3]["false_positives"] == 1 and stats[3]["mean_oks"] > 0
    )
    assert stats[4] == {"gt": 1, "found": 0, "missed": 1, "detections": 0, "false_positives": 0,
                        "recall": 0.0, "mean_oks": 0.0}  # fmt: skip
    assert stats[2]["recall"] is None and stats[2]["false_positives"] == 1
    arts = render_gallery(
        [black()] * 5, gt, preds, KS, tmp_path, n=4, image_ids=[10, 11, 12, 13, 14]
    )
    assert [a["meta"]["image_id"] for a in arts] == [14, 13, 11, 10]
    assert [a["meta"]["rank"] for a in arts] == [1, 2, 3, 4]
    assert all((tmp_path / a["path"]).is_file() for a in arts)
    assert "0/1 people found" in arts[0]["title"]
    lazily = render_gallery(lambda i: black(), gt, preds, KS, tmp_path, n=1)  # a loader callable
    assert lazily[0]["meta"]["image_id"] == 4 and lazily[0]["path"].endswith(".jpg")


@pytest.mark.parametrize(
    "image",
    [
        torch.full((3, 4, 5), 255, dtype=torch.uint8),
        torch.ones((3, 4, 5)),
        torch.ones((1, 4, 5)),
        np.full((4, 5, 3), 255, dtype=np.uint8),
        Image.new("RGB", (5, 4), (255, 255, 255)),
        Image.new("L", (5, 4), 255),
    ],
)
def test_image_inputs(image):
    pil = gallery.to_pil(image)
    assert pil.size == (5, 4) and pil.mode == "RGB" and pil.getpixel((2, 2)) == (255, 255, 255)


def test_mismatched_lengths_are_refused(tmp_path):
    with pytest.raises(ValueError, match="2 ground-truth lists for 1 predictions"):
        render_gallery([black()], [[], []], [None], KS, tmp_path)
