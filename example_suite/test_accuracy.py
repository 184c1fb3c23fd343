"""Is it accurate enough, per keypoint too, as claimed, and no worse than the base model?"""

import pytest

# The adopter's bar for this (synthetic) task. The vendor's card claims more; kp_claims checks that.
BOX_AP, BOX_AP50, KP_AP, KP_AP50 = 0.55, 0.90, 0.28, 0.65
KP_AP_LOW = 0.25  # what the lower end of the 95% bootstrap interval must clear
# This small CPU-trained reference model mixes up left and right knees and ankles on people
# seen from the back a quarter (knees) to over a third (ankles) of the time; a production spec
# would demand far less.
MAX_INVERSION = 0.20  # share of matched keypoints with left and right swapped
MIN_KEYPOINT_AP = 0.20  # every keypoint, on its own
# We adopt the modified model for low light (its keypoint AP there is 0.218 against the base's
# 0.128, see its TRAINING.md) and accept a small loss on clean images: 0.027 keypoint AP, less
# than the width of the 95% bootstrap interval on these 200 images. With kp_ap=0.02 this fails.
MAX_KP_AP_LOSS = 0.04


@pytest.mark.kp_thresholds(box_ap=BOX_AP, box_ap50=BOX_AP50, kp_ap=KP_AP, kp_ap50=KP_AP50)
def test_accuracy_gates():
    pass


@pytest.mark.kp_thresholds(kp_ap=KP_AP_LOW, confidence=0.95)
def test_accuracy_holds_with_confidence():
    """200 images make AP noisy: the lower end of the 95% bootstrap interval must clear it."""


@pytest.mark.kp_claims(tolerance=0.01)
def test_vendor_claims_hold():
    pass


@pytest.mark.kp_no_regression(box_ap=0.02, kp_ap=MAX_KP_AP_LOSS, fps=None)
def test_no_worse_than_base():
    pass


def test_every_keypoint_is_usable(kp_eval):
    per = kp_eval.per_keypoint
    weak = {name: round(k["ap"], 3) for name, k in per.items() if k["ap"] < MIN_KEYPOINT_AP}
    assert not weak, f"keypoints with AP < {MIN_KEYPOINT_AP}: {weak}"


def test_left_right_not_confused(kp_eval):
    """Left/right inversions are the classic keypoint failure (coco-analyze's error types)."""
    errors = kp_eval.keypoint_errors
    share = errors.share("inversion")  # None: no detection came close enough to analyse
    assert share is not None, "no predicted keypoint matched a person: nothing to analyse"
    assert share < MAX_INVERSION, errors.to_json()["per_keypoint"]


@pytest.mark.kp_thresholds(max_drop_fp16=0.01)
def test_fp16_keeps_accuracy():
    """fp16 needs a GPU and is skipped without one. bf16 runs on the CPU too
    (``max_drop_bf16=``), but CPUs without native bf16 emulate it at 27-170x the cost of fp32
    per convolution; test_speed.py's parity table compares it on a sample instead."""
