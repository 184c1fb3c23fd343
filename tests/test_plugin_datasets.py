"""Real keypoint datasets through the plugin: presets, the card keys and options that read
them, and a bad ground truth refused before anything predicts."""

from __future__ import annotations

import json
from pathlib import Path

from real_datasets import crowdpose_like, humanart_like, ochuman_like, wholebody_like

from kp_factories import make_dataset, write_card

# A model that looks up each image's ground truth, shifted; K from the annotations (COCO-
# WholeBody's parts joined as the plugin joins them). It records every call in RECORD, so a
# spec can tell whether it was ever built or asked to predict.
RECORDING_SOURCE = """
import hashlib
import json
from pathlib import Path

import torch

from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.data import decode_image
from pytest_kpmodel.data_layouts import assemble_wholebody, is_wholebody

RECORD = []


def _key(image):
    return hashlib.sha256((image.float() * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()


class Oracle:
    def __init__(self, annotations, shift):
        coco = json.loads(Path(annotations).read_text())
        if is_wholebody(coco):
            coco, _ = assemble_wholebody(coco)
        folder = Path(annotations).parent / "images"
        by_image = {}
        for ann in coco["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
        self.table = {}
        for im in coco["images"]:
            pixels, _ = decode_image(folder / im["file_name"])
            self.table[_key(pixels.float() / 255)] = by_image.get(im["id"], [])
        self.shift = shift
        self.k = len(coco["annotations"][0]["keypoints"]) // 3

    def predict(self, images):
        RECORD.append(("predict", len(images)))
        out = []
        for image in images:
            anns = self.table[_key(image.cpu())]
            k = self.k
            boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                   a["bbox"][1] + a["bbox"][3]] for a in anns]).reshape(-1, 4)
            kps = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float64)
            kps = kps.reshape(-1, k, 3).float()
            kps[..., 0] += self.shift * torch.arange(k).float() / k
            kps[..., 2] = 1.0
            scores = torch.linspace(1.0, 0.5, len(anns))
            out.append(Prediction(boxes.float(), scores, torch.ones(len(anns), dtype=torch.long), kps))
        return out


def build(annotations, shift=0.0):
    RECORD.append(("build", annotations))
    return Oracle(annotations, shift)
"""


def write_set(folder: Path, gt: dict) -> Path:
    """The ground truth as annotations.json, with a distinct small noise image per entry."""
    import numpy as np
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for im in gt["images"]:
        pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / im["file_name"], quality=95)
    path = folder / "annotations.json"
    path.write_text(json.dumps(gt))
    return path


def recording_card(folder: Path, annotations: Path, keypoints: str = "", dataset: str = "",
                   shift: float = 4.0) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recording_model.py").write_text(RECORDING_SOURCE)
    return write_card(
        folder,
        f'schema = 1\n[model]\nname = "recorder"\nformat = "python"\n'
        f'architecture = "recording_model:build"\n[model.kwargs]\nannotations = "{annotations}"\n'
        f'shift = {shift}\n{keypoints}\n[dataset]\nannotations = "{annotations}"\n{dataset}\n',
    )


NEVER_PREDICTED = """
import sys

def test_eval(kp_eval):
    pass

def test_model_never_built_nor_asked():
    # runs after test_eval: the model's module was never even imported
    assert "recording_model" not in sys.modules
"""


def test_bad_ground_truth_fails_at_setup_before_the_model_predicts(pytester):
    gt, _ = humanart_like(1)
    ann = write_set(pytester.path / "data", gt)
    card = recording_card(pytester.path / "model", ann)
    pytester.makepyfile(NEVER_PREDICTED)
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_eval*",
        f"*{ann}: category 1 'person' lists 21 keypoint names but * annotations carry 17 "
        "keypoints (51 values) in 'keypoints' (ids *",
    ])  # fmt: skip


def test_rle_without_size_names_the_file_and_annotation_before_predicting(pytester):
    """hotcoco (the default engine when installed) would raise a bare ValueError here."""
    ann = make_dataset(pytester.path / "data")
    gt = json.loads(ann.read_text())
    gt["annotations"][1]["segmentation"] = {"counts": [0, 25, 75]}
    ann.write_text(json.dumps(gt))
    card = recording_card(pytester.path / "model", ann)
    pytester.makepyfile(NEVER_PREDICTED)
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(errors=1, passed=1)
    aid = gt["annotations"][1]["id"]
    result.stdout.fnmatch_lines(
        [f"*{ann}: annotation id {aid}: 'segmentation' is an RLE dict without 'size' *"]
    )
    assert "ValueError" not in result.stdout.str()


def test_card_keypoints_must_match_the_set_before_predicting(pytester):
    gt, _ = crowdpose_like(2)
    ann = write_set(pytester.path / "data", gt)
    card = recording_card(pytester.path / "model", ann, dataset="area_from_box = 0.53")
    pytester.makepyfile(NEVER_PREDICTED)
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines([
        f"*the card's [[]keypoints[]] ({card}) has 17 keypoints (preset coco17) but the ground "
        "truth's category 1 'person' has 14 *set preset = 'crowdpose14' under [[]keypoints[]]*"
    ])  # fmt: skip


CROWDPOSE_SPEC = """
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pytest_kpmodel.keypoints import CROWDPOSE14


def test_eval_equals_pycocotools(kp_eval, kp_predictions, kp_dataset, kp_card):
    assert kp_card.keypoints == CROWDPOSE14 and kp_dataset.num_keypoints == 14
    assert "area" in kp_dataset.coco["annotations"][0]  # filled: 0.53 * box w*h
    gt = COCO()
    gt.dataset = kp_dataset.coco
    gt.createIndex()
    dt = gt.loadRes(kp_predictions.to_coco_results(kp_dataset.category_id))
    e = COCOeval(gt, dt, "keypoints")
    e.params.kpt_oks_sigmas = np.asarray(CROWDPOSE14.sigmas)
    e.evaluate(); e.accumulate(); e.summarize()
    assert 0 < e.stats[0] < 1
    assert abs(kp_eval.keypoints["AP"] - e.stats[0]) < 1e-12
    assert kp_eval.dataset["sigmas"] == list(CROWDPOSE14.sigmas)
    notes = kp_eval.dataset["notes"]
    assert "annotations had no 'area'; they get 0.53 * box w*h" in notes[0]
    assert any("each counts only the first 12 keypoints" in n for n in notes)
"""


def test_crowdpose_preset_evaluates_as_pycocotools(pytester):
    gt, _ = crowdpose_like(3)
    ann = write_set(pytester.path / "data", gt)
    card = recording_card(pytester.path / "model", ann, keypoints='[keypoints]\npreset = "crowdpose14"',
                          dataset="area_from_box = 0.53", shift=10.0)  # fmt: skip
    pytester.makepyfile(CROWDPOSE_SPEC)
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*kpmodel: warning: annotations.json: * annotations had no 'area'; they get 0.53 * box*",
        "*kpmodel: warning: annotations.json: 'num_keypoints' differs from the count of keypoints"
        " with v > 0 on * (ids *",
    ])  # fmt: skip


def test_area_from_box_option_and_ini(pytester):
    gt, _ = crowdpose_like(4)
    ann = write_set(pytester.path / "data", gt)
    card = recording_card(
        pytester.path / "model", ann, keypoints='[keypoints]\npreset = "crowdpose14"'
    )
    pytester.makepyfile("def test_eval(kp_eval):\n    assert kp_eval.keypoints['AP'] > 0\n")
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*has no 'area' (* annotations have none*--kp-area-from-box=0.53*"]
    )
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code", "--kp-area-from-box=0.53")
    result.assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nkp_area_from_box = 0.53\n")
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code", "--kp-area-from-box=2")
    assert "--kp-area-from-box: must be in (0, 1], got '2'" in result.stderr.str()


BOX_AREA_SPEC = """
def test_eval(kp_eval):
    assert any("accepted (allow_box_area)" in n for n in kp_eval.dataset["notes"])
"""


def test_box_areas_need_the_card_key_or_the_option(pytester):
    gt, _ = ochuman_like(2)
    ann = write_set(pytester.path / "data", gt)
    plain = recording_card(pytester.path / "plain", ann)
    pytester.makepyfile(BOX_AREA_SPEC)
    result = pytester.runpytest(f"--kp-model={plain}", "--kp-allow-code")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*every annotation's 'area' equals its box w*h*'allow_box_area = true' under [[]dataset[]] "
        "in the card, --kp-allow-box-area (ini kp_allow_box_area)*"
    ])  # fmt: skip
    result = pytester.runpytest(f"--kp-model={plain}", "--kp-allow-code", "--kp-allow-box-area")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*kpmodel: warning: *accepted (allow_box_area)*"])
    keyed = recording_card(pytester.path / "keyed", ann, dataset="allow_box_area = true")
    result = pytester.runpytest(f"--kp-model={keyed}", "--kp-allow-code")
    result.assert_outcomes(passed=1)
    # the card's key describes the card's own set, not one passed with --kp-dataset
    result = pytester.runpytest(f"--kp-model={keyed}", "--kp-allow-code", f"--kp-dataset={ann}")
    result.assert_outcomes(errors=1)
    pytester.makeini("[pytest]\nkp_allow_box_area = true\n")
    result = pytester.runpytest(f"--kp-model={plain}", "--kp-allow-code", f"--kp-dataset={ann}")
    result.assert_outcomes(passed=1)


WHOLEBODY_SPEC = """
def test_eval(kp_eval, kp_dataset, kp_card):
    assert kp_card.keypoints.preset == "coco_wholebody133" and kp_dataset.num_keypoints == 133
    assert kp_eval.dataset["num_keypoints"] == 133
    assert 0 < kp_eval.keypoints["AP"] < 1
    assert kp_eval.dataset["notes"][0].startswith("COCO-WholeBody: the 133 keypoints are")
    assert set(kp_eval.per_keypoint.names) >= {"left_big_toe", "face-67", "right_pinky_finger4"}
"""


def test_wholebody_preset_reads_the_five_parts(pytester):
    gt, _ = wholebody_like(1)
    ann = write_set(pytester.path / "data", gt)
    card = recording_card(pytester.path / "model", ann, shift=20.0,
                          keypoints='[keypoints]\npreset = "coco_wholebody133"')  # fmt: skip
    pytester.makepyfile(WHOLEBODY_SPEC)
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(passed=1)


def test_allow_box_area_option_is_registered(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--kp-allow-box-area*", "*--kp-area-from-box=F*"])
    result.stdout.fnmatch_lines(["*kp_allow_box_area (bool):*", "*kp_area_from_box (string):*"])
