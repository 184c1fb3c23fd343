"""Is loading or running it safe: no pickle payload, no network, no subprocess, no writes?"""

import pytest


# pickle="strict": safetensors and ONNX hold no pickle; a pickle-based checkpoint (a PyTorch
# .pt/.pth state dict, a detectron2 .pkl or .pth, an Ultralytics .pt) is statically scanned and
# loads only when every class it would import is on the plugin's reviewed allow-list (tensors,
# numpy arrays; the Ultralytics module classes only when the card opts in with
# [model] allowlist = "ultralytics"). Anything else is refused before it is unpickled.
# pickle="none" would refuse every pickle, and so every detectron2 and Ultralytics checkpoint.
@pytest.mark.kp_security(pickle="strict", network=False, subprocess=False, writes=False, code=False)
def test_safe_to_load_and_run():
    pass


def test_weights_scan_clean(kp_scan):
    assert kp_scan.verdict == "clean", kp_scan.findings
