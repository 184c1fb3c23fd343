"""A detectron2 card's architecture and [model.kwargs]: each mistake is one message naming the
card and the key."""

from __future__ import annotations

import pytest
from d2_cases import card_text, kwargs, make_card

from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.detectron2.config import parse_config
from pytest_kpmodel.adapters.detectron2.config_defaults import BASE, FIXED, USED
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import CardError


def _card(tmp_path, kw=None, arch=None, extra=""):
    path = tmp_path / "kpmodel.toml"
    (tmp_path / "model_final.pkl").write_bytes(b"")
    text = card_text("model_final.pkl", kw, extra)
    if arch is not None:
        text = text.replace('"detectron2:keypoint_rcnn_R_50_FPN_3x"', arch)
    path.write_text(text)
    return load_card(path)


def _error(tmp_path, kw=None, arch=None) -> str:
    with pytest.raises(CardError) as exc:
        parse_config(_card(tmp_path, kw, arch))
    return str(exc.value)


def test_defaults_are_the_zoo_config(tmp_path):
    cfg = parse_config(_card(tmp_path, {}))
    assert cfg["MODEL.RESNETS.DEPTH"] == 50 and cfg["INPUT.MIN_SIZE_TEST"] == 800
    assert cfg["MODEL.PIXEL_MEAN"] == [103.53, 116.28, 123.675]
    assert cfg["MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS"] == (512,) * 8
    assert cfg.merge_list() == []
    assert set(BASE) >= USED and set(BASE) >= FIXED and not USED & FIXED


def test_other_zoo_configs(tmp_path):
    cfg = parse_config(_card(tmp_path, {}, arch='"detectron2:keypoint_rcnn_X_101_32x8d_FPN_3x"'))
    assert cfg["MODEL.RESNETS.NUM_GROUPS"] == 32 and cfg["MODEL.RESNETS.STRIDE_IN_1X1"] is False


def test_overrides_are_applied_and_kept_for_merge_from_list(tmp_path):
    cfg = parse_config(_card(tmp_path))
    assert cfg["MODEL.FPN.OUT_CHANNELS"] == 16
    assert cfg.merge_list()[:2] == ["MODEL.RESNETS.STEM_OUT_CHANNELS", 8]


def test_misspelt_key_suggests_the_right_one(tmp_path):
    msg = _error(tmp_path, {"MODEL.RESNETS.DEPHT": 18})
    assert str(tmp_path / "kpmodel.toml") in msg
    assert '[model.kwargs."MODEL.RESNETS.DEPHT"]' in msg
    assert 'did you mean "MODEL.RESNETS.DEPTH"?' in msg


def test_unknown_key_without_a_close_one(tmp_path):
    msg = _error(tmp_path, {"num_classes": 2})
    assert '"num_classes"' in msg and "not a detectron2 config key" in msg
    assert "did you mean" not in msg


def test_wrong_type(tmp_path):
    msg = _error(tmp_path, {"INPUT.MIN_SIZE_TEST": "288"})
    assert '"INPUT.MIN_SIZE_TEST"' in msg and "must be an integer" in msg and "'288'" in msg
    msg = _error(tmp_path, {"MODEL.RESNETS.STRIDE_IN_1X1": 1})
    assert "must be a boolean" in msg


def test_int_for_float_and_list_for_tuple_are_accepted(tmp_path):
    cfg = parse_config(
        _card(
            tmp_path,
            {"MODEL.ROI_HEADS.SCORE_THRESH_TEST": 1, "MODEL.RPN.BBOX_REG_WEIGHTS": [1, 1, 2, 2]},
        )
    )
    assert cfg["MODEL.ROI_HEADS.SCORE_THRESH_TEST"] == 1.0
    assert cfg["MODEL.RPN.BBOX_REG_WEIGHTS"] == (1, 1, 2, 2)


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("INPUT.FORMAT", "YUV", "must be one of 'BGR', 'RGB'"),
        ("MODEL.RESNETS.DEPTH", 42, "must be one of 18, 34, 50, 101, 152"),
        ("MODEL.PIXEL_STD", [1.0, 1.0], "3 numbers"),
        ("MODEL.ROI_HEADS.NMS_THRESH_TEST", 1.5, "must be in [0, 1]"),
        ("MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", [], "non-empty list"),
        ("MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIPool", "must be one of 'ROIAlignV2', 'ROIAlign'"),
        ("MODEL.ANCHOR_GENERATOR.OFFSET", 1.0, "[0, 1)"),
    ],
)
def test_out_of_range_values(tmp_path, key, value, text):
    msg = _error(tmp_path, {key: value})
    assert f'"{key}"' in msg and text in msg


def test_keys_this_implementation_does_not_reproduce(tmp_path):
    msg = _error(tmp_path, {"MODEL.MASK_ON": True})
    assert '"MODEL.MASK_ON"' in msg and "only with False" in msg
    msg = _error(tmp_path, {"MODEL.RESNETS.DEFORM_ON_PER_STAGE": [False, False, True, True]})
    assert "DEFORM_ON_PER_STAGE" in msg
    # the zoo's own value is fine
    parse_config(_card(tmp_path, {"MODEL.KEYPOINT_ON": True, "MODEL.RESNETS.NORM": "FrozenBN"}))


def test_training_only_keys_are_accepted_without_effect(tmp_path):
    cfg = parse_config(_card(tmp_path, {"SOLVER.BASE_LR": 0.01, "MODEL.DEVICE": "cpu"}))
    assert cfg["SOLVER.BASE_LR"] == 0.01


def test_detectron2_asserts_become_card_errors(tmp_path):
    msg = _error(tmp_path, {"MODEL.RESNETS.DEPTH": 18})
    assert '"MODEL.RESNETS.RES2_OUT_CHANNELS"' in msg and "ResNet-18" in msg
    msg = _error(tmp_path, {"MODEL.ROI_BOX_HEAD.NUM_FC": 0})
    assert "NUM_CONV + NUM_FC" in msg
    msg = _error(tmp_path, {"MODEL.ANCHOR_GENERATOR.SIZES": [[32], [64, 96], [128], [256], [512]]})
    assert "same number of anchors" in msg


def test_architecture(tmp_path):
    msg = _error(tmp_path, arch='"detectron2:keypoint_rcnn_R_50_FPN_2x"')
    assert (
        "[model.architecture]" in msg and "did you mean 'detectron2:keypoint_rcnn_R_50_FPN_" in msg
    )
    msg = _error(tmp_path, arch='"torchvision:keypointrcnn_resnet50_fpn"')
    assert "detectron2:keypoint_rcnn_R_50_FPN_3x" in msg


def test_missing_architecture(tmp_path):
    path = tmp_path / "kpmodel.toml"
    (tmp_path / "w.pkl").write_bytes(b"")
    path.write_text('schema = 1\n[model]\nname = "x"\nformat = "detectron2"\nweights = "w.pkl"\n')
    with pytest.raises(CardError, match=r"\[model.architecture\] missing; format 'detectron2'"):
        parse_config(load_card(path))


def test_keypoint_count_must_match_the_card(tmp_path):
    kw = {**kwargs(), "MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS": 14}
    card = load_card(make_card(tmp_path, kw=kw))
    with pytest.raises(CardError, match=r"predicts 14 keypoints and \[keypoints\] names 17"):
        load_model(card, LoadOptions())


def test_unquoted_dotted_keys_are_the_same_keys(tmp_path):
    path = tmp_path / "kpmodel.toml"
    (tmp_path / "w.pkl").write_bytes(b"")
    path.write_text(
        'schema = 1\n[model]\nname = "x"\nformat = "detectron2"\nweights = "w.pkl"\n'
        'architecture = "detectron2:keypoint_rcnn_R_50_FPN_3x"\n[model.kwargs]\n'
        'MODEL.RESNETS.DEPTH = 101\nINPUT.MIN_SIZE_TEST = 600\n"INPUT.MAX_SIZE_TEST" = 1000\n'
    )
    cfg = parse_config(load_card(path))
    assert cfg["MODEL.RESNETS.DEPTH"] == 101 and cfg["INPUT.MIN_SIZE_TEST"] == 600
    assert cfg["INPUT.MAX_SIZE_TEST"] == 1000
    path.write_text(path.read_text().replace("MODEL.RESNETS.DEPTH", "MODEL.RESNET.DEPTH"))
    with pytest.raises(CardError, match='did you mean "MODEL.RESNETS.DEPTH"'):
        parse_config(load_card(path))
