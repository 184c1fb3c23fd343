"""kp_diff / diff_cards: added, removed, reshaped, changed and frozen tensors; FLOPs; findings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from prov_helpers import write_model

from kp_factories import tiny_module
from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.provenance.diff import diff_cards
from pytest_kpmodel.provenance.modifications import is_mentioned


@pytest.fixture(scope="module")
def base_sd():
    return tiny_module(seed=1).state_dict()


@pytest.fixture(scope="module")
def base(tmp_path_factory, base_sd) -> Path:
    return write_model(tmp_path_factory.mktemp("base") / "base", base_sd)


def deeper_sd(base_sd):
    """keypoint_head_depth 2: the base's tensors copied, one conv added, one tensor scaled 1.1x."""
    sd = tiny_module(seed=5, keypoint_head_depth=2).state_dict()
    for k, v in base_sd.items():
        sd[k] = v.clone()
    sd["roi_heads.keypoint_head.0.weight"] = base_sd["roi_heads.keypoint_head.0.weight"] * 1.1
    return sd


@pytest.fixture(scope="module")
def deeper(tmp_path_factory, base_sd) -> Path:
    return write_model(
        tmp_path_factory.mktemp("deeper") / "deeper",
        deeper_sd(base_sd),
        keypoint_head_depth=2,
        card_extra='[provenance]\nmodifications = ["keypoint head: 2 convs instead of 1"]\n',
    )


@pytest.fixture(scope="module")
def deeper_diff(deeper, base):
    return diff_cards(deeper, base)


def test_added_tensors_and_relative_change(deeper_diff):
    d = deeper_diff
    assert [t.name for t in d.added] == [
        "roi_heads.keypoint_head.2.weight",
        "roi_heads.keypoint_head.2.bias",
    ]
    assert d.removed == [] and d.reshaped == []
    assert [t.name for t in d.changed] == ["roi_heads.keypoint_head.0.weight"]
    assert d.tensor("roi_heads.keypoint_head.0.weight").rel_change == pytest.approx(0.1, rel=1e-6)
    assert d.tensor("roi_heads.keypoint_head.0.bias").status == "frozen"
    layer = d.layer("roi_heads.keypoint_head.0")
    assert layer.status == "changed" and layer.rel_change == pytest.approx(0.1, rel=1e-6)
    assert d.layer("roi_heads.keypoint_head.2").status == "added"


def test_frozen_layers_and_parameter_counts(deeper_diff):
    d = deeper_diff
    frozen = set(d.frozen_layers)
    assert {"backbone.body.conv1", "rpn.head.cls_logits", "roi_heads.box_head.fc6"} <= frozen
    assert "roi_heads.keypoint_head.0" not in frozen
    assert len(frozen) == len(d.layers) - 2
    added = sum(math.prod(t.shape) for t in d.added)
    assert d.param_delta == added == 16 * 16 * 3 * 3 + 16
    assert d.model.params > 0 and d.param_kinds_known


def test_flops_counted_on_a_fixed_input(deeper_diff):
    d = deeper_diff
    assert d.base.flops > 0
    assert d.model.flops > d.base.flops  # one more conv on the same detections
    assert d.flops_input == (3, 320, 320)


def test_mentioned_changes_give_no_findings(deeper_diff):
    assert deeper_diff.findings() == []


def test_unmentioned_structural_change_warns(tmp_path, base, base_sd):
    card = write_model(
        tmp_path / "m",
        deeper_sd(base_sd),
        keypoint_head_depth=2,
        card_extra='[provenance]\nmodifications = ["new box head"]\n',
    )
    findings = diff_cards(card, base, flops=False).findings()
    assert [(f.severity, f.check) for f in findings] == [
        ("warn", "diff.modifications"),
        ("info", "diff.modifications"),
    ]
    assert findings[0].message.startswith(
        "unmentioned change: roi_heads.keypoint_head: tensors 2 added"
    )
    assert "weights of 1 layer(s) changed (max rel. change 0.1)" in findings[1].message


def test_training_mention_covers_weight_changes_and_no_modifications_warns(tmp_path, base, base_sd):
    sd = {k: v.clone() for k, v in base_sd.items()}
    sd["rpn.head.cls_logits.weight"] = sd["rpn.head.cls_logits.weight"] * 0.5
    trained = write_model(
        tmp_path / "t", sd, card_extra='[provenance]\nmodifications = ["fine-tuned on CrowdPose"]\n'
    )
    assert diff_cards(trained, base, flops=False).findings() == []
    silent = write_model(tmp_path / "s", sd)
    (f,) = diff_cards(silent, base, flops=False).findings()
    assert f.severity == "warn" and "lists no [provenance] modifications" in f.message


def test_reshaped_and_changed_with_other_widths_and_seed(tmp_path, base):
    wide = write_model(
        tmp_path / "wide", tiny_module(seed=0, keypoint_head_channels=32).state_dict(),
        keypoint_head_channels=32,
    )  # fmt: skip
    d = diff_cards(wide, base)
    reshaped = {t.name: (t.shape, t.base_shape) for t in d.reshaped}
    assert reshaped["roi_heads.keypoint_head.0.weight"] == ((32, 16, 3, 3), (16, 16, 3, 3))
    assert reshaped["roi_heads.keypoint_predictor.kps_score_lowres.weight"] == (
        (32, 17, 4, 4),
        (16, 17, 4, 4),
    )
    assert d.layer("roi_heads.keypoint_head.0").status == "reshaped"
    assert d.layer("roi_heads.keypoint_head.0").rel_change is None
    # another seed: conv weights differ everywhere; BatchNorm starts at 1/0 in both
    assert d.layer("backbone.body.layer1.0.conv1").status == "changed"
    assert d.layer("backbone.body.layer1.0.conv1").rel_change > 0.5
    assert d.layer("backbone.body.bn1").status == "frozen"
    assert d.model.flops > 0 and d.base.flops > 0


def test_removed_tensors(deeper, base):
    d = diff_cards(base, deeper, flops=False)  # the other way round
    assert [t.name for t in d.removed] == [
        "roi_heads.keypoint_head.2.weight",
        "roi_heads.keypoint_head.2.bias",
    ]
    assert d.layer("roi_heads.keypoint_head.2").status == "removed"


def test_json_and_render(deeper_diff):
    data = json.loads(json.dumps(deeper_diff.to_json(), allow_nan=False))
    assert data["summary"]["added"] == 2
    assert data["parameters"]["delta"] == 16 * 16 * 9 + 16
    assert data["added"][0] == {"name": "roi_heads.keypoint_head.2.weight", "shape": [16, 16, 3, 3]}
    assert data["flops"]["input"] == [3, 320, 320] and data["flops"]["model"] > 0
    assert "backbone.body.conv1" in data["frozen_layers"]
    comps = {c["name"]: c for c in data["components"]}
    assert comps["roi_heads.keypoint_head"]["added"] == 1
    assert comps["backbone.body"]["rel_change"] == 0.0
    text = deeper_diff.render()
    assert "component" in text and "roi_heads.keypoint_head" in text
    assert "added (2):" in text and "roi_heads.keypoint_head.2.weight (16, 16, 3, 3)" in text
    assert "2 added, 0 removed, 0 reshaped, 1 changed" in text


@pytest.mark.parametrize(
    ("name", "mods", "expected"),
    [
        ("roi_heads.keypoint_head.2.weight", ["keypoint head: 4 convs"], True),
        ("roi_heads.keypoint_head.2.weight", ["Keypoint-heads widened"], True),
        ("roi_heads.keypoint_predictor.kps_score_lowres.weight", ["keypoint head"], True),
        ("rpn.head.conv.0.0.weight", ["keypoint head"], False),
        ("rpn.head.conv.0.0.weight", ["region proposal network retuned"], True),
        ("backbone.fpn.inner_blocks.0.0.weight", ["feature pyramid: 128 channels"], True),
        ("backbone.body.layer4.0.conv1.weight", ["new box head"], False),
        ("roi_heads.box_predictor.cls_score.weight", ["box head: 3 classes"], True),
    ],
)
def test_is_mentioned(name, mods, expected):
    assert is_mentioned(name, mods) is expected


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_code_formats_need_allow_code(tmp_path, base):
    from kp_factories import make_model

    scripted = make_model(tmp_path / "ts", fmt="torchscript", seed=1)
    with pytest.raises(KpModelError, match="allow_code=True"):
        diff_cards(scripted, base)
    d = diff_cards(scripted, base, allow_code=True, flops=False)
    assert d.added == [] and d.removed == [] and d.reshaped == []
    assert d.changed == []  # same seed: the scripted module holds the base's tensors


def test_session_diff_uses_the_baseline(deeper, base):
    from pytest_kpmodel.provenance.diff import session_diff
    from pytest_kpmodel.session import KpSession
    from pytest_kpmodel.settings import Settings

    d = session_diff(KpSession(Settings(model=deeper, baseline=base)), flops=False)
    assert [t.name for t in d.added][0] == "roi_heads.keypoint_head.2.weight"
