"""Geometric perturbations: image warps agree with the coordinate maps; inverses are exact;
flips swap left/right keypoints with the card's flip pairs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

import pytest_kpmodel.strategies as kps
from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.keypoints import COCO17, KeypointSet
from pytest_kpmodel.robustness.geometry import AffineTransform, transform_prediction
from pytest_kpmodel.robustness.perturbations import Compose, Perturbation

H, W = 48, 64


def ramp(h: int = H, w: int = W) -> torch.Tensor:
    """Channel 0: x / W of each pixel centre, channel 1: y / H, channel 2: 0.5."""
    x = (torch.arange(w, dtype=torch.float64) + 0.5) / w
    y = (torch.arange(h, dtype=torch.float64) + 0.5) / h
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w),
                        torch.full((h, w), 0.5, dtype=torch.float64)]).float()  # fmt: skip


def centres(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return torch.stack([xs, ys], -1).to(torch.float64)  # [h, w, 2]


def random_prediction(n: int = 3, k: int = 17, seed: int = 0) -> Prediction:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, k, 2, generator=g, dtype=torch.float64) * torch.tensor([W, H])
    kp = torch.cat([xy, torch.rand(n, k, 1, generator=g, dtype=torch.float64)], -1)
    lo = xy.amin(1)
    hi = xy.amax(1)
    return Prediction(torch.cat([lo, hi], -1), torch.rand(n, generator=g), torch.ones(n).long(), kp)


GEOMETRIC = [
    Perturbation.of("scale", 2.0),
    Perturbation.of("scale", 3.0, shrink=True),
    Perturbation.of("translate", 3.0, direction=200.0),
    Perturbation.of("rotate", 4.0),
    Perturbation.of("rotate", 2.5, clockwise=True),
    Perturbation("hflip", 1.0),
    Compose((Perturbation.of("rotate", 2.0), Perturbation("hflip", 1.0),
             Perturbation.of("scale", 1.5, shrink=True), Perturbation.of("translate", 1.0))),
]  # fmt: skip


@pytest.mark.parametrize("p", GEOMETRIC, ids=repr)
def test_image_warp_agrees_with_the_coordinate_map(p):
    """Bilinear warps reproduce linear ramps exactly, so every interior output pixel holds the
    original coordinates its centre maps back to: the image and the keypoints move together."""
    out = p.apply([ramp()])
    t = out.transforms[0]
    img = out.images[0].double()
    oh, ow = img.shape[-2:]
    back = t.inverse().points(centres(oh, ow))
    # interior: the source point is at least 2 source pixels from the border (no clamping, no
    # fill, no antialias window leaving the image)
    margin = 2.0 + max(1.0, 1.0 / min(abs(t.det), 1.0)) * 2
    inside = (
        (back[..., 0] > margin) & (back[..., 0] < W - margin)
        & (back[..., 1] > margin) & (back[..., 1] < H - margin)
    )  # fmt: skip
    assert inside.sum() > 0.3 * oh * ow
    got = torch.stack([img[0] * W, img[1] * H], -1)
    err = (got - back)[inside].abs().max()
    assert err < 1e-4 * max(W, H), float(err)  # float32 image values: ~1e-5 px


@pytest.mark.parametrize("p", GEOMETRIC, ids=repr)
def test_keypoints_map_back_exactly(p):
    pred = random_prediction()
    out = p.apply([torch.rand(3, H, W)], predictions=[pred])
    back = out.map_back(out.predictions)[0]
    torch.testing.assert_close(back.keypoints, pred.keypoints, atol=1e-4, rtol=0)
    if out.transforms[0].axis_aligned:
        torch.testing.assert_close(back.boxes, pred.boxes, atol=1e-4, rtol=0)
    else:  # a rotated box is enclosed, so mapped back it contains the original
        assert (back.boxes[:, :2] <= pred.boxes[:, :2] + 1e-6).all()
        assert (back.boxes[:, 2:] >= pred.boxes[:, 2:] - 1e-6).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(p=kps.geometric(max_severity=5, max_steps=3))
def test_any_geometric_chain_maps_keypoints_back_exactly(p):
    pred = random_prediction(2, seed=3)
    out = p.apply([torch.rand(3, H, W)], predictions=[pred])
    back = out.map_back(out.predictions)[0]
    torch.testing.assert_close(back.keypoints, pred.keypoints, atol=1e-4, rtol=0)
    t = out.transforms[0]
    if t is not None:
        again = out.map_forward([back])[0]
        torch.testing.assert_close(again.keypoints, out.predictions[0].keypoints, atol=1e-4, rtol=0)


def test_flip_uses_the_pixel_centre_convention():
    img = torch.zeros(3, H, W)
    img[:, 10, 7] = 1.0
    kp = torch.zeros(1, 17, 3)
    kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = 7.5, 10.5, 1.0
    pred = Prediction(
        torch.tensor([[7.0, 10.0, 8.0, 11.0]]), torch.ones(1), torch.ones(1).long(), kp
    )
    out = Perturbation("hflip", 1.0).apply([img], predictions=[pred])
    assert out.images[0][0, 10, W - 1 - 7] == 1.0
    assert out.predictions[0].keypoints[0, 0, 0] == W - 7.5 == (W - 1 - 7) + 0.5
    assert out.predictions[0].boxes.tolist() == [[W - 8.0, 10.0, W - 7.0, 11.0]]


def test_flip_swaps_left_and_right_keypoints():
    """After a flip the model's "left shoulder" is the mirror of the original right shoulder
    (albumentations' HorizontalFlip moves points but keeps their labels)."""
    pred = random_prediction(1)
    out = Perturbation("hflip", 1.0).apply([torch.rand(3, H, W)], predictions=[pred])
    flipped = out.predictions[0].keypoints[0]
    names = COCO17.names
    for a, b in COCO17.flip_pairs:
        i, j = names.index(a), names.index(b)
        assert flipped[i, 0] == W - pred.keypoints[0, j, 0]
        assert flipped[i, 1] == pred.keypoints[0, j, 1]
        assert flipped[i, 2] == pred.keypoints[0, j, 2]  # the score travels with the point
    nose = names.index("nose")
    assert flipped[nose, 0] == W - pred.keypoints[0, nose, 0]


def test_flip_twice_is_the_identity_with_pairs_swapped_back():
    pred = random_prediction(2)
    img = torch.rand(3, H, W)
    once = Perturbation("hflip", 1.0).apply([img], predictions=[pred])
    twice = Perturbation("hflip", 1.0).apply(once.images, predictions=once.predictions)
    assert torch.equal(twice.images[0], img)
    assert torch.equal(twice.predictions[0].keypoints, pred.keypoints)
    assert torch.equal(twice.predictions[0].boxes, pred.boxes)
    chained = once.transforms[0].then(twice.transforms[0])
    assert chained.matrix == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0) and not chained.flip


def test_flip_uses_the_cards_flip_pairs():
    ks = KeypointSet(
        names=("head", "l_hand", "r_hand", "l_foot", "r_foot"),
        flip_pairs=(("l_hand", "r_hand"), ("l_foot", "r_foot")),
        sigmas=(0.05,) * 5,
        skeleton=((0, 1), (0, 2)),
    )
    pred = random_prediction(1, k=5)
    out = Perturbation("hflip", 1.0).apply(
        [torch.rand(3, H, W)], predictions=[pred], keypoint_set=ks
    )
    kp = out.predictions[0].keypoints[0]
    assert kp[1, 0] == W - pred.keypoints[0, 2, 0] and kp[4, 0] == W - pred.keypoints[0, 3, 0]
    with pytest.raises(ValueError, match="needs the card's keypoint set"):
        Perturbation("hflip", 1.0).apply([torch.rand(3, H, W)], predictions=[pred])


def test_ground_truth_and_predictions_move_together():
    pred = random_prediction(2)
    kp = pred.keypoints.clone()
    kp[..., 2] = 2.0  # COCO "visible"
    kp[0, 3] = 0.0  # not labelled: (0, 0, 0)
    target = {"boxes": pred.boxes.clone(), "keypoints": kp, "area": torch.tensor([10.0, 20.0]),
              "image_id": 7}  # fmt: skip
    for p in GEOMETRIC[:-1]:  # single steps: a chain may bring a dropped point back inside
        out = p.apply([torch.rand(3, H, W)], targets=[target], predictions=[pred])
        t, q = out.targets[0], out.predictions[0]
        oh, ow = out.images[0].shape[-2:]
        assert t["image_id"] == 7
        labelled = t["keypoints"][..., 2] > 0
        torch.testing.assert_close(
            t["keypoints"][..., :2][labelled], q.keypoints[..., :2][labelled]
        )
        xy = q.keypoints[..., :2]
        inside = (xy[..., 0] >= 0) & (xy[..., 0] <= ow) & (xy[..., 1] >= 0) & (xy[..., 1] <= oh)
        swapped = out.transforms[0].flip
        src_unlabelled = 3 if not swapped else COCO17.flip_index()[3]
        assert t["keypoints"][0, src_unlabelled].tolist() == [0.0, 0.0, 0.0]
        expected = inside.clone()
        expected[0, src_unlabelled] = False
        assert torch.equal(labelled, expected)
        assert (t["boxes"][:, 0::2] >= 0).all() and (t["boxes"][:, 0::2] <= ow).all()
        torch.testing.assert_close(t["area"], target["area"] * abs(out.transforms[0].det))


def test_transform_algebra():
    t = AffineTransform.rotate((H, W), 17.0).then(AffineTransform.resize((H, W), (30, 40)))
    pts = torch.rand(50, 2, dtype=torch.float64) * 60
    torch.testing.assert_close(t.inverse().points(t.points(pts)), pts, atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="cannot chain"):
        t.then(AffineTransform.identity((H, W)))
    p = random_prediction(1)
    flip = AffineTransform.hflip((H, W))
    with pytest.raises(ValueError, match="flip_index"):
        transform_prediction(p, flip)
