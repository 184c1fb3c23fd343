from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import CardError
from pytest_kpmodel.keypoints import COCO17

GOOD = """
schema = 1
[model]
name = "m"
format = "safetensors"
weights = "w.safetensors"
architecture = "torchvision:keypointrcnn_resnet50_fpn"
[model.kwargs]
num_classes = 2
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "w.safetensors").write_bytes(b"x")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    p = folder / "kpmodel.toml"
    p.write_text(text)
    return p


def error(folder: Path, text: str) -> str:
    with pytest.raises(CardError) as exc:
        load_card(write(folder, text))
    return str(exc.value)


def test_good_card_defaults_to_coco17(folder):
    card = load_card(write(folder, GOOD))
    assert card.model.name == "m"
    assert card.model.weights == folder / "w.safetensors"
    assert card.model.kwargs == {"num_classes": 2}
    assert card.keypoints == COCO17
    assert card.keypoints.flip_index()[1] == 2 and card.keypoints.flip_index()[0] == 0


def test_folder_is_accepted(folder):
    write(folder, GOOD)
    assert load_card(folder).path == folder / "kpmodel.toml"


def test_missing_card(tmp_path):
    with pytest.raises(CardError, match="model card not found"):
        load_card(tmp_path / "nope.toml")


def test_folder_without_card(tmp_path):
    with pytest.raises(CardError, match="has no kpmodel.toml"):
        load_card(tmp_path)


def test_bad_toml(folder):
    msg = error(folder, "schema = 1\n[model\n")
    assert "kpmodel.toml" in msg and "not valid TOML" in msg


def test_unknown_key_is_named(folder):
    msg = error(folder, GOOD.replace('name = "m"', 'name = "m"\nsha265 = "x"'))
    assert "[model.sha265] unknown key" in msg and str(folder) in msg


def test_unknown_table(folder):
    assert "[claim] unknown top-level key" in error(folder, GOOD + "[claim]\nbox_ap = 1\n")


def test_wrong_type(folder):
    msg = error(folder, GOOD.replace('name = "m"', "name = 3"))
    assert "[model.name] must be a string, got integer 3" in msg


def test_claim_must_be_number(folder):
    assert "[claims.kp_ap] must be a number" in error(folder, GOOD + '[claims]\nkp_ap = "high"\n')


def test_weights_missing(folder):
    (folder / "w.safetensors").unlink()
    assert "[model.weights] file not found" in error(folder, GOOD)


def test_weights_escaping_folder(folder):
    msg = error(folder, GOOD.replace('"w.safetensors"', '"../w.safetensors"'))
    assert "[model.weights] path '../w.safetensors' escapes the card's folder" in msg


def test_unknown_format(folder):
    msg = error(folder, GOOD.replace('"safetensors"', '"keras"'))
    assert "[model.format] unknown format 'keras'" in msg


def test_architecture_shape(folder):
    msg = error(folder, GOOD.replace("torchvision:keypointrcnn_resnet50_fpn", "resnet"))
    assert "[model.architecture]" in msg


def test_bad_sha(folder):
    assert "[model.sha256] must be 64 hex" in error(
        folder, GOOD.replace('name = "m"', 'name = "m"\nsha256 = "abc"')
    )


def test_sigma_count_mismatch(folder):
    text = GOOD + '[keypoints]\nnames = ["a", "b"]\nsigmas = [0.1]\n'
    assert "[keypoints.sigmas] has 1 values for 2 keypoint names" in error(folder, text)


def test_custom_keypoints(folder):
    text = (
        GOOD + '[keypoints]\nnames = ["l", "r", "c"]\nsigmas = [0.1, 0.1, 0.2]\n'
        'flip_pairs = [["l", "r"]]\nskeleton = [["l", "c"], [1, 2]]\n'
    )
    kps = load_card(write(folder, text)).keypoints
    assert kps.flip_index() == [1, 0, 2]
    assert kps.skeleton == ((0, 2), (1, 2))


def test_flip_pair_unknown_name(folder):
    text = GOOD + '[keypoints]\nflip_pairs = [["left_eye", "left_thumb"]]\n'
    assert "'left_thumb' is not one of keypoints.names" in error(folder, text)


def test_bad_requirement(folder):
    text = GOOD + '[dependencies]\nrequires = ["torch>>2"]\n'
    assert "[dependencies.requires] 'torch>>2'" in error(folder, text)


def test_base_and_dataset_may_point_outside(folder):
    text = (
        GOOD
        + '[provenance]\nbase = "../base/kpmodel.toml"\n[dataset]\nannotations = "../../a.json"\n'
    )
    card = load_card(write(folder, text))
    assert card.provenance.base == folder.parent / "base" / "kpmodel.toml"


def test_unsupported_schema(folder):
    assert "unsupported schema 2" in error(folder, GOOD.replace("schema = 1", "schema = 2"))


def test_keypoint_preset(folder):
    from pytest_kpmodel.keypoints import COCO_WHOLEBODY133, CROWDPOSE14

    card = load_card(write(folder, GOOD + '[keypoints]\npreset = "crowdpose14"\n'))
    assert card.keypoints == CROWDPOSE14 and card.keypoints.preset == "crowdpose14"
    card = load_card(write(folder, GOOD + '[keypoints]\npreset = "coco_wholebody133"\n'))
    assert card.keypoints.num_keypoints == 133 and card.keypoints == COCO_WHOLEBODY133
    assert load_card(write(folder, GOOD + '[keypoints]\npreset = "coco17"\n')).keypoints == COCO17


def test_unknown_preset_names_the_known_ones(folder):
    msg = error(folder, GOOD + '[keypoints]\npreset = "crowdpose"\n')
    assert "[keypoints.preset] unknown preset 'crowdpose'" in msg
    assert "coco17, crowdpose14, coco_wholebody133" in msg


def test_preset_values_can_be_overridden(folder):
    from pytest_kpmodel.keypoints import CROWDPOSE14

    sigmas = [0.05] * 14
    text = GOOD + f'[keypoints]\npreset = "crowdpose14"\nsigmas = {sigmas}\n'
    ks = load_card(write(folder, text)).keypoints
    assert ks.sigmas == tuple(sigmas) and ks.names == CROWDPOSE14.names
    assert ks.flip_pairs == CROWDPOSE14.flip_pairs and ks.preset == ""  # no longer the preset
    # renamed keypoints keep the preset's sigmas, pairs and skeleton position by position
    names = [n.replace("head", "top_head") for n in CROWDPOSE14.names]
    text = GOOD + f'[keypoints]\npreset = "crowdpose14"\nnames = {names}\n'
    ks = load_card(write(folder, text)).keypoints
    assert ks.names[12] == "top_head" and ks.sigmas == CROWDPOSE14.sigmas
    assert ks.skeleton == CROWDPOSE14.skeleton and ks.flip_index() == CROWDPOSE14.flip_index()
    # another count: the preset's values do not fit, sigmas are required
    text = GOOD + '[keypoints]\npreset = "crowdpose14"\nnames = ["a", "b"]\n'
    assert "[keypoints.sigmas] missing; a custom keypoint set" in error(folder, text)


def test_custom_17_names_still_need_sigmas(folder):
    names = [f"p{i}" for i in range(17)]
    assert "[keypoints.sigmas] missing" in error(folder, GOOD + f"[keypoints]\nnames = {names}\n")


def test_dataset_reading_flags(folder):
    card = load_card(write(folder, GOOD))
    assert card.dataset.allow_box_area is False and card.dataset.area_from_box is None
    text = GOOD + '[dataset]\nannotations = "a.json"\nallow_box_area = true\narea_from_box = 0.53\n'
    ds = load_card(write(folder, text)).dataset
    assert ds.allow_box_area is True and ds.area_from_box == 0.53
    msg = error(folder, GOOD + '[dataset]\nallow_box_area = "yes"\n')
    assert "[dataset.allow_box_area] must be true or false, got string 'yes'" in msg
    for bad in ("0", "1.5", "true", '"0.53"'):
        msg = error(folder, GOOD + f"[dataset]\narea_from_box = {bad}\n")
        assert "[dataset.area_from_box] must be a number in (0, 1]" in msg
