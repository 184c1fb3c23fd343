from __future__ import annotations

import shutil

from ul_cases import DATA

from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.card import load_card
from pytest_kpmodel.cli import main as cli


def test_card_init_detects_an_ultralytics_checkpoint(tmp_path):
    weights = tmp_path / "best.pt"
    shutil.copyfile(DATA / "yolo11-pose-tiny.pt", weights)
    assert cli(["card", "init", str(weights)]) == 0
    text = (tmp_path / "kpmodel.toml").read_text()
    assert 'format = "ultralytics"' in text and 'allowlist = "ultralytics"' in text
    card = load_card(tmp_path)  # loads as written: no TODO placeholder blocks it
    assert load_model(card, LoadOptions()).num_keypoints == 17
