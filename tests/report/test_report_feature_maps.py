"""Backbone feature maps of a tiny random Keypoint R-CNN, and collecting a run's artifacts."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from pytest_kpmodel.report.feature_maps import backbone_features, render_feature_maps


def image(h: int = 72, w: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)


def test_levels_and_padding(report_models):
    model, _ = report_models
    got = backbone_features(model, image())
    names = list(got["levels"])
    assert names == list(model.module.backbone(torch.zeros(1, 3, 64, 96)).keys())
    seen = got["image"]
    # min_size 64: the 72x96 image is resized to 64x85 and padded to 64x96 for the backbone
    assert tuple(seen.shape) == (3, 64, 85) and float(seen.min()) >= 0 and float(seen.max()) <= 1
    first = got["levels"][names[0]]
    assert first.shape[0] == 16 and first.shape[-1] == -(-85 // 4)  # padding cropped


def test_model_vs_base_figure_and_meta(report_models, tmp_path):
    model, base = report_models
    arts = render_feature_maps(model, [image(), Image.new("RGB", (80, 64), (30, 200, 90))], tmp_path,
                               base_model=base, image_ids=[7, 8])  # fmt: skip
    assert [a["meta"]["image_id"] for a in arts] == [7, 8]
    a = arts[0]
    assert a["kind"] == "feature_maps" and "model vs base" in a["title"]
    png = Image.open(tmp_path / a["path"])
    assert png.format == "PNG" and png.width > 600
    meta = json.loads(json.dumps(a["meta"]))  # JSON-serialisable
    assert set(meta["levels"]) == set(meta["base_levels"]) == set(meta["cosine_to_base"])
    for level in meta["levels"].values():
        assert level["shape"][0] == 16 and 0 <= level["dead_channels"] <= 1
    assert all(-1 <= c < 0.9999 for c in meta["cosine_to_base"].values())  # the base differs
    same = render_feature_maps(model, [image()], tmp_path, base_model=model)
    assert all(c == pytest.approx(1.0) for c in same[0]["meta"]["cosine_to_base"].values())
    alone = render_feature_maps(model, [image()], tmp_path)
    assert "cosine_to_base" not in alone[0]["meta"] and "vs" not in alone[0]["title"]


def test_models_without_a_backbone_give_a_note(tmp_path):
    opaque = SimpleNamespace(device=torch.device("cpu"), predict=lambda images: [])
    (a,) = render_feature_maps(opaque, [image()], tmp_path)
    assert a["path"] is None and "no transform/backbone" in a["meta"]["skipped"]


class _Run:
    """What collect_artifacts reads from a KpSession: the pieces it computed, and the card."""

    def __init__(self, card=None, **pieces) -> None:
        self.card, self.pieces, self.sections = card, pieces, {}

    def computed(self, piece: str):
        return self.pieces.get(piece)


def test_collect_artifacts_from_a_finished_run(tiny_dataset, report_models, tmp_path):
    """What the plugin calls at session end: only what the run computed is drawn."""
    from pytest_kpmodel.adapters.base import Prediction
    from pytest_kpmodel.data import load_dataset
    from pytest_kpmodel.keypoints import COCO17
    from pytest_kpmodel.predictions import PredictionSet
    from pytest_kpmodel.report.write import collect_artifacts

    dataset = load_dataset(tiny_dataset)
    anns = {a["image_id"]: a for a in dataset.coco["annotations"]}
    preds = []
    for i in dataset.image_ids:
        kp = torch.tensor(anns[i]["keypoints"], dtype=torch.float32).view(17, 3)
        x, y, w, h = anns[i]["bbox"]
        preds.append(Prediction(torch.tensor([[x, y, x + w, y + h]]), torch.tensor([0.9]),
                                torch.tensor([1]), kp[None]))  # fmt: skip
    session = _Run(card=SimpleNamespace(keypoints=COCO17))
    assert collect_artifacts(session, tmp_path) == []  # nothing computed, nothing drawn
    session.pieces["dataset"] = dataset
    session.pieces["predictions"] = PredictionSet(list(dataset.image_ids), preds)
    arts = collect_artifacts(session, tmp_path, gallery=2)
    assert [a["kind"] for a in arts] == ["gallery", "gallery"]
    model, base = report_models
    session.pieces["model"] = model
    session.pieces["baseline"] = _Run(model=base)
    arts = collect_artifacts(session, tmp_path, gallery=0, feature_maps=1)
    assert [a["kind"] for a in arts] == ["feature_maps"] and "cosine_to_base" in arts[0]["meta"]
    session.pieces["predictions"] = "broken"
    (note,) = collect_artifacts(session, tmp_path, feature_maps=0)
    assert note["path"] is None and "error" in note["meta"]
