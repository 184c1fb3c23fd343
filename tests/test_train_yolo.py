"""tools/train_yolo.py: the parts that need no ultralytics (which CI does not install): YOLO pose
labels, the validation split's conversion, the offline font, the card and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tool_modules import ROOT, load_tool

from pytest_kpmodel.card import load_card
from pytest_kpmodel.keypoints import COCO17


@pytest.fixture(scope="module")
def yt():
    return load_tool("train_yolo")


def _ann(bbox, kps, crowd=0):
    return {"bbox": bbox, "keypoints": kps, "iscrowd": crowd, "category_id": 1}


def test_labels_are_normalised_and_hidden_keypoints_keep_their_place(yt):
    kps = [0.0, 0.0, 0] * 17
    kps[0:3] = [40.0, 30.0, 2]  # nose, visible
    kps[3:6] = [100.0, 144.0, 1]  # left eye, inside the image but hidden
    lines = yt.yolo_label_lines([_ann([20, 10, 40, 100], kps)], width=200, height=100)
    assert len(lines) == 1
    vals = lines[0].split()
    assert vals[0] == "0" and len(vals) == 1 + 4 + 17 * 3
    box = np.array(vals[1:5], dtype=float)
    np.testing.assert_allclose(box, [40 / 200, 60 / 100, 40 / 200, 100 / 100])
    k = np.array(vals[5:], dtype=float).reshape(17, 3)
    np.testing.assert_allclose(k[0], [0.2, 0.3, 2])
    np.testing.assert_allclose(k[1], [0.5, 1.44, 1])  # v=1 keeps its coordinates
    assert np.all(k[2:] == 0)  # v=0: "0 0 0", never coordinates
    assert vals[7] == "2" and vals[10] == "1"  # visibility written as an integer


def test_crowd_annotations_are_left_out(yt):
    kps = [10.0, 10.0, 2] * 17
    assert yt.yolo_label_lines([_ann([0, 0, 5, 5], kps, crowd=1)], 64, 64) == []


def test_validation_split_copies_images_and_writes_one_label_file_each(yt, tmp_path):
    src = tmp_path / "coco"
    (src / "images").mkdir(parents=True)
    kps = [12.0, 8.0, 2] + [0.0, 0.0, 0] * 16
    data = {
        "images": [{"id": 5, "file_name": "a.jpg", "width": 32, "height": 16},
                   {"id": 9, "file_name": "b.jpg", "width": 32, "height": 16}],
        "annotations": [{"id": 1, "image_id": 5, **_ann([8, 4, 8, 8], kps)}],
        "categories": [{"id": 1, "name": "person"}],
    }  # fmt: skip
    for im in data["images"]:
        (src / "images" / im["file_name"]).write_bytes(b"jpeg bytes of " + im["file_name"].encode())
    (src / "annotations.json").write_text(json.dumps(data))
    root = tmp_path / "yolo"
    stems = yt.convert_val_split(root, src / "annotations.json", src / "images")
    assert stems == {"a": 5, "b": 9}
    assert (root / "images/val/a.jpg").read_bytes() == b"jpeg bytes of a.jpg"
    assert (root / "labels/val/a.txt").read_text().startswith("0 0.375000 0.500000 ")
    assert (root / "labels/val/b.txt").read_text() == ""  # an image without people: background


def test_data_yaml_declares_coco17_keypoints_and_flips(yt, tmp_path):
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load(yt.write_data_yaml(tmp_path).read_text())
    assert spec["kpt_shape"] == [17, 3]
    assert spec["flip_idx"] == COCO17.flip_index()
    assert spec["names"] == {0: "person"}
    assert (spec["train"], spec["val"]) == ("images/train", "images/val")


def test_offline_environment_provides_the_font_ultralytics_would_download(
    yt, tmp_path, monkeypatch
):
    for var in ("YOLO_OFFLINE", "YOLO_CONFIG_DIR", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    yt.offline_environment(tmp_path / "cfg", threads=1)
    import os

    assert os.environ["YOLO_OFFLINE"] == "1"
    assert os.environ["YOLO_CONFIG_DIR"] == str(tmp_path / "cfg")
    assert os.environ["OMP_NUM_THREADS"] == "1"
    font = (tmp_path / "cfg" / "Arial.ttf").read_bytes()
    assert font[:4] in (b"\x00\x01\x00\x00", b"true")  # a TrueType file
    assert (tmp_path / "cfg" / "Ultralytics" / "Arial.ttf").read_bytes() == font


def test_card_is_the_ultralytics_format_and_loads(yt, tmp_path):
    out = tmp_path / "kp-tiny-yolo"
    out.mkdir()
    weights = out / "kp-tiny-yolo.pt"
    weights.write_bytes(b"not really a checkpoint")
    (out / "LICENSE").write_text("AGPL-3.0")
    val = ROOT / "example_suite" / "data" / "val" / "annotations.json"
    path = yt.write_card(out, name="kp-tiny-yolo", version="1.0.0", weights=weights, imgsz=384,
                         source="https://models.example.org/kp-tiny-yolo/1.0.0",
                         modifications=["trained from scratch"], claims={"box_ap": 0.61234},
                         val=val, val_images=None)  # fmt: skip
    card = load_card(path)
    assert card.model.format == "ultralytics"
    assert card.model.allowlist == ("ultralytics",)
    assert card.model.architecture is None
    assert card.model.kwargs == {"imgsz": 384}
    assert card.model.sha256 == yt.train.sha256_file(weights)
    assert card.license.spdx == "AGPL-3.0-only"
    assert card.claims["box_ap"] == 0.612
    assert card.dataset.annotations == val.resolve()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--data-seed", "7"], "validation set's seed"), (["--work", "build"], "inside the repo")],
)
def test_refuses_the_validation_seed_and_scratch_inside_the_repository(yt, tmp_path, extra,
                                                                       message, capsys):  # fmt: skip
    argv = ["--out", str(tmp_path / "m"), "--work", str(tmp_path / "w"), "--val", "x.json"]
    if extra[0] == "--work":
        argv[3] = str(ROOT / extra[1])
    else:
        argv += extra
    with pytest.raises(SystemExit, match=message):
        yt.main(argv)
    assert not (tmp_path / "m").exists()


def _row(epoch, box):
    return {"epoch": float(epoch), "train/box_loss": box, "train/pose_loss": 2 * box,
            "train/kobj_loss": 0.5, "train/cls_loss": 1.0, "train/dfl_loss": 1.5,
            "val/box_loss": box, "metrics/mAP50-95(B)": 0.1 * epoch}  # fmt: skip


def test_an_earlier_stage_read_from_the_checkpoint_comes_first(yt, tmp_path):
    # a checkpoint's train_results: results.csv as columns (Ultralytics pads the names)
    columns = {"epoch": [1, 2], "  train/box_loss": [3.0, 2.0]}
    assert yt.results_rows(columns) == [{"epoch": 1.0, "train/box_loss": 3.0},
                                        {"epoch": 2.0, "train/box_loss": 2.0}]  # fmt: skip
    assert yt.results_rows(None) == []
    rows = yt.staged([_row(1, 3.0), _row(2, 2.0)], [_row(1, 1.5)])
    assert [(r["stage"], r["step"], r["epoch"]) for r in rows] == [(1, 1, 1.0), (1, 2, 2.0),
                                                                   (2, 3, 1.0)]  # fmt: skip
    assert [r["stage"] for r in yt.staged([], [_row(1, 1.0)])] == [1]
    png = tmp_path / "loss.png"
    yt.plot_results(rows, png, "two stages")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_time_capped_run_is_resumed_only_with_the_same_cap(yt, tmp_path):
    # --time changes the schedule Ultralytics re-estimates: resuming without it (or with
    # another cap) would not finish the same run, so the checkpoint's train_args are checked
    argv = ["--out", "m", "--work", str(tmp_path), "--epochs", "4", "--time", "0.7"]
    want = yt.expected_train_args(yt.build_parser().parse_args(argv), tmp_path / "data.yaml")
    assert want["time"] == 0.7
    ckpt = {**want, "time": None}
    assert yt.resume_mismatches(want, ckpt) == ["time: given 0.7, checkpoint None"]
    assert yt.resume_mismatches(want, dict(want)) == []
    plain = yt.build_parser().parse_args(argv[:-2])
    assert "time" not in yt.expected_train_args(plain, tmp_path / "data.yaml")
