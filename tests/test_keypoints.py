"""Keypoint presets: the published values, and the symmetries a flip relies on."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools.cocoeval import Params

from pytest_kpmodel.keypoint_presets import WHOLEBODY_PARTS
from pytest_kpmodel.keypoints import COCO17, COCO_WHOLEBODY133, CROWDPOSE14, PRESETS, preset

# (preset, K, sum of sigmas) as published (see keypoint_presets' sources)
EXPECTED = [("coco17", 17, 1.138), ("crowdpose14", 14, 1.15), ("coco_wholebody133", 133, 3.861)]


@pytest.mark.parametrize("name, k, total", EXPECTED)
def test_sizes_and_sigma_sums(name, k, total):
    ks = preset(name)
    assert ks is PRESETS[name] and ks.preset == name and ks.num_keypoints == k
    assert len(ks.sigmas) == k and len(set(ks.names)) == k
    assert sum(ks.sigmas) == pytest.approx(total, abs=1e-9)
    assert all(0 < s < 0.2 for s in ks.sigmas)


def test_coco_sigmas_are_pycocotools_own():
    # pycocotools divides [.26, ...] by 10: equal to the last bit or two
    ref = Params(iouType="keypoints").kpt_oks_sigmas
    assert np.allclose(COCO17.sigmas, ref, atol=1e-15, rtol=0)


def test_crowdpose_values():
    # crowdposetools/cocoeval.py computeOks, and CrowdPose's annotation file's names
    official = np.array(
        [0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89, 0.79, 0.79]
    )
    assert np.allclose(CROWDPOSE14.sigmas, official / 10.0, atol=1e-12, rtol=0)
    assert CROWDPOSE14.names[12:] == ("head", "neck")
    assert CROWDPOSE14.names[:12] == COCO17.names[5:]  # COCO's body joints, in COCO's order
    assert CROWDPOSE14.sigmas[:12] == COCO17.sigmas[5:]


def test_wholebody_layout():
    ks = COCO_WHOLEBODY133
    assert [n for _, n in WHOLEBODY_PARTS] == [17, 6, 68, 21, 21]
    assert ks.names[:17] == COCO17.names and ks.sigmas[:17] == COCO17.sigmas
    assert ks.names[23:91] == tuple(f"face-{i}" for i in range(68))
    assert ks.names[91] == "left_hand_root" and ks.names[112] == "right_hand_root"
    # the two hands share their sigmas; the foot's left and right differ only in the heel
    assert ks.sigmas[91:112] == ks.sigmas[112:133]
    assert len(ks.flip_pairs) == 8 + 3 + 29 + 21 and len(ks.skeleton) == 19 + 6 + 40


@pytest.mark.parametrize("name", list(PRESETS))
def test_flip_is_a_symmetry(name):
    ks = PRESETS[name]
    perm = ks.flip_index()
    assert sorted(perm) == list(range(ks.num_keypoints))
    assert all(perm[perm[i]] == i for i in perm)  # an involution
    for a, b in ks.flip_pairs:
        if a.startswith("left_"):
            assert b == "right_" + a.removeprefix("left_")
        else:  # the face: mirror points of the 68-point layout
            assert a.startswith("face-") and b.startswith("face-")
        i, j = ks.names.index(a), ks.names.index(b)
        assert ks.sigmas[i] == ks.sigmas[j] or name == "coco_wholebody133"
    unpaired = [n for i, n in enumerate(ks.names) if perm[i] == i]
    assert not any(n.startswith(("left_", "right_")) for n in unpaired)
    edges = {frozenset(e) for e in ks.skeleton}
    assert all(0 <= i < ks.num_keypoints for e in ks.skeleton for i in e)
    assert {frozenset((perm[a], perm[b])) for a, b in ks.skeleton} == edges


def test_wholebody_mirrored_body_and_hands_share_sigmas():
    # COCO-WholeBody's face and foot sigmas are empirical per point, mirror points included
    # (left big toe 0.068, right 0.092); body and hand pairs are equal by construction.
    ks = COCO_WHOLEBODY133
    perm = ks.flip_index()
    same = [i for i in range(133) if ks.sigmas[i] == ks.sigmas[perm[i]]]
    assert set(range(17)) | set(range(91, 133)) <= set(same)
    assert ks.sigmas[17] != ks.sigmas[perm[17]]


def test_unknown_preset():
    assert preset("coco18") is None
