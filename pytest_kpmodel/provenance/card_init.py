"""``kpmodel card init CHECKPOINT``: a starter ``kpmodel.toml`` beside a checkpoint.

The format is the security scanner's answer (``security.scan_path``: by content, never by the
file name; the scan unpickles, imports and runs nothing). Its ``kind`` names the card format
(``FORMAT_OF_KIND``), and the globals its pickle scan found tell an Ultralytics checkpoint (a
pickled ``PoseModel``) and a pickled module or object (a warning: the weights-only loader
refuses it) from a plain state dict. Tensor names and shapes, for the architecture guess
(:mod:`.architecture`), are read only where that runs no code: the safetensors header, a
``torch.export`` archive's weight configs, and a state dict the scan found clean, loaded the
way ``kp_model`` loads it (``security.load_state_dict_safely``: ``torch.load(weights_only=True)``)
onto the meta device, so no tensor data is read. Every guess is marked TODO, and the card always
parses with ``load_card(check_files=False)``.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..card import CARD_FILENAME, load_card
from ..errors import CardError, KpModelError
from ..keypoints import PRESETS
from ..security import ScanReport, load_state_dict_safely, scan_path
from .architecture import ArchGuess, guess_architecture
from .digests import sha256_file
from .paths import atomic_write

Shapes = dict[str, tuple[int, ...] | None]

# scanner kind -> (card format, evidence written into the card)
FORMAT_OF_KIND: dict[str, tuple[str, str]] = {
    "safetensors": ("safetensors", "safetensors header with {tensors} tensors"),
    "torch-zip": ("pytorch", "a torch.save zip (data.pkl, no code/)"),
    "torchscript": ("torchscript", "a TorchScript zip (code/ members)"),
    "torch-export": ("exported", "a torch.export .pt2 archive"),
    "onnx": ("onnx", "an ONNX ModelProto (protobuf: ir_version, graph)"),
    # pickles that are not a torch.save zip: the legacy (pre-zip) format, a plain pickle, or a
    # pickle of numpy arrays (what a detectron2 model-zoo .pkl is)
    "torch-legacy": ("pytorch", "a legacy (pre-zip) torch.save pickle"),
    "pickle": ("pytorch", "a legacy (pre-zip) torch.save pickle"),
    "numpy-pickle": ("detectron2", "a pickle of numpy arrays (a detectron2 model-zoo .pkl)"),
}
# A detectron2 .pkl's tensor names are not read (that would unpickle it): the family's base
# zoo config is the guess, and the adapter's weights-fit check refuses a checkpoint it misfits.
DETECTRON2_GUESS = "detectron2:keypoint_rcnn_R_50_FPN_3x"
ULTRALYTICS_POSE = "ultralytics.nn.tasks.PoseModel"
LEGACY_WARNING = (
    "legacy torch.save format: re-save it with a current torch or as safetensors; kpmodel loads "
    "it with weights_only=True only"
)


@dataclass
class Detected:
    format: str  # a card format name
    evidence: str  # why, in words
    tensors: Shapes = field(default_factory=dict)  # name -> shape (None: not known)
    warnings: list[str] = field(default_factory=list)


def detect_format(path: str | Path) -> Detected:
    """The card format of a checkpoint, as the security scanner tells it (nothing is run)."""
    path = Path(path)
    if not path.is_file():
        raise CardError(path, "checkpoint not found (or not a regular file)")
    report = scan_path(path, allow_code=True)  # code is a format here, not a finding
    kind = report.kind
    if kind == "zip":
        raise CardError(path, "a zip archive, but not a torch.save, TorchScript or .pt2 file")
    if kind not in FORMAT_OF_KIND:
        raise CardError(
            path,
            "cannot tell the format by content (not safetensors, a torch.save/TorchScript/"
            "torch.export zip, ONNX or a torch pickle)",
        )
    fmt, evidence = FORMAT_OF_KIND[kind]
    if kind == "torch-zip" and ULTRALYTICS_POSE in report.globals:
        return Detected(
            "ultralytics",
            "an Ultralytics YOLO-pose checkpoint (a pickled PoseModel; loads only with the "
            'reviewed allowlist = "ultralytics")',
        )
    det = Detected(fmt, evidence.format(tensors=report.tensors), _shapes(path, report))
    if fmt == "pytorch" and kind not in ("torch-zip", "numpy-pickle"):
        det.warnings.append(LEGACY_WARNING)
    odd = sorted(
        {f.details["name"] for f in report.failures if f.details.get("code") == "disallowed-global"}
    )
    if kind == "torch-zip" and odd:
        det.warnings.append(
            "its pickle references "
            + ", ".join(odd[:5])
            + (" ..." if len(odd) > 5 else "")
            + ": not a plain state dict (a pickled module or object?); kpmodel loads "
            "only with weights_only=True, which will likely refuse it — export the "
            "state dict, ideally as safetensors"
        )
    return det


def _shapes(path: Path, report: ScanReport) -> Shapes:
    """Tensor names and shapes, where reading them runs no code."""
    if report.kind == "safetensors" and report.ok:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    if report.kind == "torch-export":
        return _pt2_shapes(path)
    if report.kind == "torch-zip" and report.ok:
        try:
            state = load_state_dict_safely(path, report, map_location="meta", mmap=True)
        except KpModelError:
            return {}
        import torch

        if isinstance(state, dict):
            return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    return {}


def _pt2_shapes(path: Path) -> Shapes:
    """Shapes from a .pt2's weight configs: one per program; "model" is a whole model, others
    a submodule path."""
    tensors: Shapes = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            m = re.fullmatch(r"[^/]+/data/weights/(.+)_weights_config\.json", name)
            if m:
                prefix = "" if m.group(1) == "model" else m.group(1) + "."
                tensors |= {prefix + k: v for k, v in _config_shapes(z.read(name)).items()}
    return tensors


def _config_shapes(raw: bytes) -> Shapes:
    try:
        config = json.loads(raw).get("config", {})
        return {
            k: tuple(int(s.get("as_int", -1)) for s in v["tensor_meta"]["sizes"])
            for k, v in config.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def starter_card(
    checkpoint: Path, name: str | None = None, *, pin: bool = True, det: Detected | None = None
) -> str:
    """The text of a starter card for ``checkpoint`` (valid TOML; guesses marked TODO).
    ``pin=False``: no version and no sha256 (the card ``--kp-model CHECKPOINT`` builds in
    memory: nobody pinned them); ``det``: the format already detected."""
    det = det or detect_format(checkpoint)
    guess = guess_architecture(det.tensors)
    lines = [
        f"# Starter model card written by `kpmodel card init` for {checkpoint.name}.",
        "# Review every TODO before you publish or sign it (`kpmodel sign kpmodel.toml --key ...`).",
        "schema = 1",
        "",
        "[model]",
        f"name = {_q(name or checkpoint.stem)}  # TODO: the published model name",
        'version = "0.1.0"  # TODO: the published version' if pin else "# version: unknown",
        f"format = {_q(det.format)}  # detected from content: {det.evidence}",
        f"weights = {_q(checkpoint.name)}",
        f"sha256 = {_q(sha256_file(checkpoint))}" if pin else "# sha256: not pinned",
    ]
    lines += [f"# WARNING: {w}" for w in det.warnings]
    if det.format == "ultralytics":
        lines += ULTRALYTICS_LINES
    lines += _architecture_lines(det, guess)
    lines += _keypoint_lines(guess)
    lines += TAIL_LINES
    return "\n".join(lines)


def _q(value: object) -> str:
    return json.dumps(value)


def _architecture_lines(det: Detected, guess: ArchGuess) -> list[str]:
    if det.format == "detectron2":
        return [
            f"architecture = {_q(DETECTRON2_GUESS)}  # TODO: confirm: the model-zoo config it "
            "was trained from (a guess: a pickle's tensor names are not read)",
        ]
    if guess.architecture is None:
        if det.format in ("safetensors", "pytorch"):
            return [
                "# TODO: the builder of this state dict, as 'package.module:factory' (its kwargs "
                "go in",
                "# [model.kwargs]); e.g. torchvision:keypointrcnn_resnet50_fpn. The tensor names",
                "# match no builder known to kpmodel, so this placeholder fails until you replace "
                "it:",
                'architecture = "TODO_replace_me.module:factory"',
            ]
        return [
            f"# architecture: not needed for format {det.format!r} (the file holds the graph);",
            '# set it only to name the family, e.g. "torchvision:keypointrcnn_resnet50_fpn".',
        ]
    why = "" if guess.confident else " — a guess: check it"
    lines = [
        f"architecture = {_q(guess.architecture)}  # TODO: confirm ({guess.note}{why})",
        "",
        "[model.kwargs]  # TODO: confirm; guessed from tensor names and shapes",
    ]
    lines += [f"{k} = {_q(v)}" for k, v in guess.kwargs.items()]
    if guess.architecture.endswith("keypointrcnn_compact"):
        lines += [
            "# min_size = 320  # TODO: the input resize the model was trained with",
            "# max_size = 512",
        ]
    if "num_keypoints" not in guess.kwargs:
        lines.append("# num_keypoints = 17  # TODO: not readable without unpickling")
    return lines


def _keypoint_lines(guess: ArchGuess) -> list[str]:
    lines = [
        "",
        "# [keypoints]: left out, so the COCO-17 person set applies (names, flip pairs,",
        "# OKS sigmas, skeleton). A model with other keypoints names a preset or lists",
        "# them:",
    ]
    if guess.num_keypoints and guess.num_keypoints != 17:
        fits = [n for n, ks in PRESETS.items() if ks.num_keypoints == guess.num_keypoints]
        hint = f' (preset = "{fits[0]}"?)' if fits else ""
        lines.append(
            f"# TODO: this model predicts {guess.num_keypoints} keypoints, not 17: add "
            f"[keypoints]{hint}"
        )
    return lines + [
        "# [keypoints]",
        '# preset = "crowdpose14"      # coco17 | crowdpose14 | coco_wholebody133; or:',
        '# names = ["...", ...]        # one per predicted keypoint, in output order',
        '# flip_pairs = [["left_x", "right_x"], ...]',
        "# sigmas = [0.025, ...]       # one OKS sigma per name",
    ]


ULTRALYTICS_LINES = [
    "# opt in to the shipped, reviewed list of the classes such a checkpoint pickles",
    "# (`kpmodel scan --show-allowlist --allowlist ultralytics` prints it):",
    'allowlist = "ultralytics"',
    "# [model.kwargs] imgsz, letterbox, conf, iou, max_det: optional, default to",
    "# Ultralytics' val settings (imgsz from the checkpoint's train_args)",
]
TAIL_LINES = [
    "",
    "[provenance]",
    '# source = "https://models.example.org/NAME/VERSION"  # TODO: where it is published',
    '# base = "../base-model/kpmodel.toml"  # TODO: the model this one modifies, if any',
    '# modifications = ["keypoint head: ...", "trained with ..."]  # TODO: what changed',
    "# signature: added by `kpmodel sign`",
    "",
    "[license]",
    '# spdx = "Apache-2.0"  # TODO: an SPDX expression',
    '# file = "LICENSE"',
    "",
    "[dependencies]",
    '# python = ">=3.10"',
    '# requires = ["torch>=2.4", "torchvision>=0.19"]',
    "",
    "[claims]  # TODO: what the vendor measured, e.g.",
    "# box_ap = 0.62",
    "# kp_ap = 0.71",
    "",
]


def init_card(checkpoint: str | Path, *, name: str | None = None, force: bool = False) -> Path:
    """Write ``kpmodel.toml`` beside ``checkpoint``; refuses to overwrite without ``force``."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CardError(checkpoint, "checkpoint not found (or not a regular file)")
    out = checkpoint.parent / CARD_FILENAME
    if out.exists() and not force:
        raise CardError(out, "a card already exists; pass --force to replace it")
    text = starter_card(checkpoint, name)
    atomic_write(out, text.encode("utf-8"), mode=0o644)
    load_card(out, check_files=False)  # the starter card must always parse
    return out
