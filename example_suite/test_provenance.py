"""Is this the file the vendor published, signed by them, from a source we trust? What did they
change against the base model?"""

import re
from pathlib import Path

import pytest

KEYS = Path(__file__).parent / "keys"
# A demo key shipped with the example: a real spec pins the vendor's real public key.
VENDOR_KEY = KEYS / "DEMO-ONLY-vendor-key.pub"
# The keypoint head, by tensor name: roi_heads.keypoint_* in torchvision's and detectron2's
# keypoint R-CNN, the pose head's keypoint branch (model.<last>.cv4) in Ultralytics YOLO-pose.
KEYPOINT_HEAD = re.compile(r"roi_heads\.keypoint|model\.\d+\.cv4\.")


@pytest.mark.kp_provenance(
    sha256=True,
    signature=True,
    trusted_keys=[VENDOR_KEY],
    sources=["https://models.example.org/*"],
)
def test_signed_by_the_vendor_and_unaltered():
    pass


def test_changes_against_base_are_declared(kp_diff):
    print(kp_diff.render())
    undeclared = [f.message for f in kp_diff.findings() if f.severity != "info"]
    assert not undeclared, undeclared
    # Only the keypoint head may change shape; the backbone must keep its architecture.
    changed = [t.name for t in kp_diff.added + kp_diff.removed]
    assert all(KEYPOINT_HEAD.match(name) for name in changed), changed
    assert not kp_diff.reshaped
