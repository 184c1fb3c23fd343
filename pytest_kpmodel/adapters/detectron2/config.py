"""A card's ``architecture`` and ``[model.kwargs]`` -> the detectron2 config this model runs with.

``architecture = "detectron2:<zoo config>"`` names one of the COCO-Keypoints model-zoo configs
(``config_defaults.ZOO_OVERRIDES``); ``[model.kwargs]`` holds the dotted config keys that differ
from it, exactly as ``cfg.merge_from_list`` takes them (``"MODEL.RESNETS.DEPTH" = 18``).

Types follow yacs' ``_check_and_coerce_cfg_value_type`` (the value's type must be the default's;
list and tuple are interchangeable), with one convenience: an integer is accepted where the
default is a float (TOML ``1`` for ``1.0``). Every error is one ``CardError`` naming the card and
the key; a misspelt key gets the closest known key as a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import CardError
from .config_defaults import BASE, FIXED, USED, ZOO_OVERRIDES

PREFIX = "detectron2:"
DEPTHS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
POOLER_TYPES = ("ROIAlignV2", "ROIAlign")


@dataclass(frozen=True)
class D2Config:
    """The merged config: ``values[key]`` for every detectron2 key, plus typed views."""

    architecture: str
    values: dict[str, Any]
    overrides: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def num_keypoints(self) -> int:
        return int(self.values["MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS"])

    def merge_list(self) -> list[Any]:
        """The overrides as ``cfg.merge_from_list`` takes them (for detectron2 itself)."""
        out: list[Any] = []
        for key, value in self.overrides.items():
            out += [key, value]
        return out


def zoo_configs() -> list[str]:
    return sorted(ZOO_OVERRIDES)


def parse_config(card) -> D2Config:
    """Validate ``card.model.architecture`` and ``card.model.kwargs`` into a ``D2Config``."""
    path = card.path
    arch = card.model.architecture
    if arch is None:
        raise CardError(
            path,
            f"missing; format 'detectron2' needs the model-zoo config it starts from, e.g. "
            f"'{PREFIX}keypoint_rcnn_R_50_FPN_3x' (one of: {', '.join(zoo_configs())})",
            "model.architecture",
        )
    name = arch[len(PREFIX) :] if arch.startswith(PREFIX) else None
    if name is None or name not in ZOO_OVERRIDES:
        close = difflib.get_close_matches(name or arch, zoo_configs(), n=1)
        hint = f"; did you mean '{PREFIX}{close[0]}'?" if close else ""
        raise CardError(
            path,
            f"{arch!r} is not a detectron2 keypoint R-CNN config this adapter knows; one of: "
            + ", ".join(PREFIX + z for z in zoo_configs())
            + hint,
            "model.architecture",
        )
    values = dict(BASE)
    values.update(ZOO_OVERRIDES[name])
    overrides: dict[str, Any] = {}
    for key, value in _flatten(card.model.kwargs).items():
        overrides[key] = _check_value(path, key, value, values)
    values.update(overrides)
    cfg = D2Config(arch, values, overrides)
    _check_consistency(path, cfg)
    return cfg


def _flatten(kwargs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Unquoted dotted TOML keys (``MODEL.RESNETS.DEPTH = 18``) arrive as nested tables: the
    same keys as the quoted ``"MODEL.RESNETS.DEPTH" = 18``."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _where(key: str) -> str:
    return f'model.kwargs."{key}"'


def _check_value(path: Path, key: str, value: Any, values: dict[str, Any]) -> Any:
    if key not in values:
        close = difflib.get_close_matches(key, list(values), n=1, cutoff=0.7)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        raise CardError(
            path,
            "not a detectron2 config key (keys are dotted, as in cfg.merge_from_list, e.g. "
            f'"MODEL.RESNETS.DEPTH"){hint}',
            _where(key),
        )
    default = values[key]
    value = _coerce(path, key, value, default)
    if key in FIXED and _plain(value) != _plain(default):
        raise CardError(
            path,
            f"this implementation reproduces detectron2's inference only with {default!r} for "
            f"this key (got {value!r})",
            _where(key),
        )
    if key in USED:
        check = _CHECKS.get(key)
        if check is not None:
            problem = check(value)
            if problem:
                raise CardError(path, f"{problem} (got {value!r})", _where(key))
    return value


def _coerce(path: Path, key: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    want = type(default)
    if isinstance(value, bool) or want is bool:
        if type(value) is want:
            return value
    elif want is float and isinstance(value, int | float):
        return float(value)
    elif want in (list, tuple) and isinstance(value, list | tuple):
        return want(value)
    elif type(value) is want:
        return value
    raise CardError(
        path,
        f"must be {_tname(default)} like the default {default!r}, got {_tname(value)} {value!r}",
        _where(key),
    )


def _tname(v: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        tuple: "a list",
    }.get(type(v), type(v).__name__)


def _plain(v: Any) -> Any:
    return [_plain(x) for x in v] if isinstance(v, list | tuple) else v


# ---- range checks of the keys this implementation reads: None when fine, else the problem


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v > 0 else "must be > 0"


def _non_negative(v: Any) -> str | None:
    return None if _number(v) and v >= 0 else "must be >= 0"


def _fraction(v: Any) -> str | None:
    return None if _number(v) and 0 <= v <= 1 else "must be in [0, 1]"


def _three_numbers(v: Any) -> str | None:
    ok = len(v) == 3 and all(_number(x) for x in v)
    return None if ok else "must be 3 numbers, one per BGR channel"


def _four_weights(v: Any) -> str | None:
    ok = len(v) == 4 and all(_number(x) and x > 0 for x in v)
    return None if ok else "must be 4 positive numbers (dx, dy, dw, dh weights)"


def _levels(v: Any) -> str | None:
    ok = (
        len(v) in (1, 5)
        and all(isinstance(x, list | tuple) and x for x in v)
        and all(_number(y) and y > 0 for x in v for y in x)
    )
    return None if ok else "must be a list of 1 or 5 non-empty lists of positive numbers"


def _one_of(*choices: Any) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else "must be one of " + ", ".join(map(repr, choices))

    return check


def _dims(allow_minus_one: bool) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = len(v) > 0 and all(
            isinstance(x, int)
            and not isinstance(x, bool)
            and (x > 0 or (allow_minus_one and x == -1))
            for x in v
        )
        what = "positive integers or -1 (= input channels)" if allow_minus_one else "positive"
        return None if ok else f"must be a non-empty list of {what} integers"

    return check


def _min_size(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0 (0 = no resizing)"


def _offset(v: Any) -> str | None:
    return None if 0 <= v < 1 else "must be in [0, 1)"


def _any_int(v: Any) -> str | None:
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "MODEL.PIXEL_MEAN": _three_numbers,
    "MODEL.PIXEL_STD": lambda v: (
        _three_numbers(v) or (None if all(x > 0 for x in v) else "must be > 0")
    ),
    "INPUT.MIN_SIZE_TEST": _min_size,
    "INPUT.MAX_SIZE_TEST": _positive_int,
    "INPUT.FORMAT": _one_of("BGR", "RGB"),
    "MODEL.RESNETS.DEPTH": _one_of(*DEPTHS),
    "MODEL.RESNETS.NUM_GROUPS": _positive_int,
    "MODEL.RESNETS.WIDTH_PER_GROUP": _positive_int,
    "MODEL.RESNETS.RES2_OUT_CHANNELS": _positive_int,
    "MODEL.RESNETS.STEM_OUT_CHANNELS": _positive_int,
    "MODEL.FPN.OUT_CHANNELS": _positive_int,
    "MODEL.FPN.FUSE_TYPE": _one_of("sum", "avg"),
    "MODEL.ANCHOR_GENERATOR.SIZES": _levels,
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": _levels,
    "MODEL.ANCHOR_GENERATOR.OFFSET": _offset,
    "MODEL.PROPOSAL_GENERATOR.MIN_SIZE": _non_negative,
    "MODEL.RPN.BBOX_REG_WEIGHTS": _four_weights,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": _positive_int,
    "MODEL.RPN.POST_NMS_TOPK_TEST": _positive_int,
    "MODEL.RPN.NMS_THRESH": _fraction,
    "MODEL.RPN.CONV_DIMS": _dims(allow_minus_one=True),
    "MODEL.ROI_HEADS.NUM_CLASSES": _positive_int,
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": _fraction,
    "MODEL.ROI_HEADS.NMS_THRESH_TEST": _fraction,
    "TEST.DETECTIONS_PER_IMAGE": _any_int,
    "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": _four_weights,
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION": _positive_int,
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": _non_negative,
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE": _one_of(*POOLER_TYPES),
    "MODEL.ROI_BOX_HEAD.NUM_FC": _non_negative,
    "MODEL.ROI_BOX_HEAD.FC_DIM": _positive_int,
    "MODEL.ROI_BOX_HEAD.NUM_CONV": _non_negative,
    "MODEL.ROI_BOX_HEAD.CONV_DIM": _positive_int,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION": _positive_int,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO": _non_negative,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE": _one_of(*POOLER_TYPES),
    "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": _dims(allow_minus_one=False),
    "MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS": _positive_int,
}


def _check_consistency(path: Path, cfg: D2Config) -> None:
    """What detectron2 asserts while building the model, as card errors."""
    depth = cfg["MODEL.RESNETS.DEPTH"]
    if depth in (18, 34):
        for key, need in (("MODEL.RESNETS.RES2_OUT_CHANNELS", 64), ("MODEL.RESNETS.NUM_GROUPS", 1)):
            if cfg[key] != need:
                raise CardError(
                    path,
                    f"detectron2 requires {need} for ResNet-{depth} (got {cfg[key]!r}); set "
                    f'"{key}" = {need}',
                    _where(key),
                )
    if cfg["MODEL.ROI_BOX_HEAD.NUM_FC"] + cfg["MODEL.ROI_BOX_HEAD.NUM_CONV"] == 0:
        raise CardError(
            path,
            "the box head needs at least one conv or fc layer (NUM_CONV + NUM_FC > 0)",
            _where("MODEL.ROI_BOX_HEAD.NUM_FC"),
        )
    ratios = cfg["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"]
    sizes = cfg["MODEL.ANCHOR_GENERATOR.SIZES"]
    per_level = [
        len(s) * len(r) for s, r in zip(_broadcast(sizes), _broadcast(ratios), strict=True)
    ]
    if len(set(per_level)) != 1:
        raise CardError(
            path,
            "every RPN level must have the same number of anchors (sizes x aspect ratios); "
            f"got {per_level}",
            _where("MODEL.ANCHOR_GENERATOR.SIZES"),
        )
    if cfg["INPUT.MIN_SIZE_TEST"] > 0 and cfg["INPUT.MAX_SIZE_TEST"] <= 0:
        raise CardError(path, "must be > 0", _where("INPUT.MAX_SIZE_TEST"))


def _broadcast(params: Any, levels: int = 5) -> list[list[float]]:
    """detectron2's ``_broadcast_params``: one list for all levels, or one per level."""
    params = [list(p) for p in params]
    return params * levels if len(params) == 1 else params
