"""``kpmodel card init | sign | verify | diff | keygen``: provenance work outside pytest.

Exit codes: 0 ok, 1 the check found a problem (verification failed), 2 usage error (a missing or
unreadable file, a file that would be overwritten without ``--force``).

``kpmodel card init CHECKPOINT`` writes a starter ``kpmodel.toml`` beside the checkpoint. The
format is told by content, never by unpickling: a safetensors header (8-byte length + JSON), a zip
archive's member names (``code/`` -> TorchScript; ``archive_format``/``models/*.json`` ->
``torch.export`` .pt2; ``data.pkl`` alone -> a ``torch.save`` state dict, whose pickle opcodes are
listed with ``pickletools`` — not executed — to warn about references beyond tensors), an ONNX
protobuf's top-level fields, or a legacy (pre-zip) ``torch.save`` pickle. Tensor names (and
shapes, where the format stores them outside a pickle) suggest the architecture; every guess is
marked TODO and the card always parses with ``load_card(check_files=False)``.
"""

from __future__ import annotations

import json
import pickletools
import re
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .card import CARD_FILENAME, load_card
from .digests import sha256_file
from .errors import KpModelError
from .keypoints import PRESETS


class UsageError(KpModelError):
    """Bad input to a ``kpmodel`` command: exit code 2."""


# -- registration --------------------------------------------------------------------------------
def register(subparsers) -> None:
    card = subparsers.add_parser("card", help="model card tools (card init CHECKPOINT)")
    card_sub = card.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    init = card_sub.add_parser(
        "init",
        help="write a starter kpmodel.toml beside a checkpoint",
        description="Write a starter kpmodel.toml beside CHECKPOINT: format detected by "
        "content, sha256 pinned, architecture guessed (marked TODO).",
    )
    init.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    init.add_argument("--name", help="model name (default: the checkpoint's file stem)")
    init.add_argument("--force", action="store_true", help="replace an existing kpmodel.toml")
    init.set_defaults(func=cmd_card_init)

    sign = subparsers.add_parser(
        "sign",
        help="sign a card and the files it names (Ed25519)",
        description="Sign CARD and every file it names with an Ed25519 private key. Adds "
        'signature = "<weights stem>.sig" under [provenance] when the card names none.',
    )
    sign.add_argument("card", type=Path, metavar="CARD", help="kpmodel.toml or its folder")
    sign.add_argument("--key", required=True, type=Path, metavar="PRIVATE", help="private key")
    sign.add_argument("--force", action="store_true", help="replace an existing signature file")
    sign.set_defaults(func=cmd_sign)

    verify = subparsers.add_parser(
        "verify",
        help="verify a card's signature, digests and files offline",
        description="Verify CARD offline: the signature against trusted public keys, the "
        "weights' sha256, and that the named files are regular files inside the card's folder.",
    )
    verify.add_argument("card", type=Path, metavar="CARD", help="kpmodel.toml or its folder")
    verify.add_argument(
        "--key", action="append", required=True, type=Path, metavar="PUBLIC",
        help="a trusted public key (repeatable)",
    )  # fmt: skip
    verify.add_argument(
        "--source", action="append", metavar="PATTERN",
        help="allowed provenance.source pattern, e.g. 'https://models.example.org/*' (repeatable)",
    )  # fmt: skip
    verify.add_argument("--exact", action="store_true", help="fail on files the card does not name")
    verify.add_argument("--base", type=Path, metavar="CARD", help="the expected base model card")
    verify.set_defaults(func=cmd_verify)

    diff = subparsers.add_parser(
        "diff",
        help="what changed in a model against its base",
        description="Compare CARD_A's model with the base CARD_B: tensors added, removed, "
        "reshaped, per-layer relative change, frozen layers, parameters, FLOPs.",
    )
    diff.add_argument("card_a", type=Path, metavar="CARD_A", help="the (modified) model")
    diff.add_argument("card_b", type=Path, metavar="CARD_B", help="the base model")
    diff.add_argument("--json", metavar="FILE", help="also write the diff as JSON ('-': stdout)")
    diff.add_argument(
        "--allow-code", action="store_true",
        help="permit loading formats that run the model's code (torchscript, python)",
    )  # fmt: skip
    diff.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    diff.add_argument("--top", type=int, default=8, metavar="N", help="rows per list (default 8)")
    diff.set_defaults(func=cmd_diff)

    keygen = subparsers.add_parser(
        "keygen",
        help="make an Ed25519 key pair for kpmodel sign",
        description="Write an Ed25519 private key to OUT (mode 0600) and its public key to "
        "OUT.pub. Keep the private key secret; hand out the .pub.",
    )
    keygen.add_argument("out", type=Path, metavar="OUT")
    keygen.add_argument("--force", action="store_true", help="replace existing key files")
    keygen.set_defaults(func=cmd_keygen)


# -- commands ------------------------------------------------------------------------------------
def cmd_card_init(args) -> int:
    path = init_card(args.checkpoint, name=args.name, force=args.force)
    print(f"wrote {path}")
    print("review every TODO in it, then: kpmodel sign " + str(path) + " --key PRIVATE")
    return 0


def cmd_sign(args) -> int:
    from .signing import sign_card

    _require_file(args.key, "private key")
    sig = sign_card(args.card, args.key, force=args.force)
    print(f"signed {args.card} -> {sig}")
    return 0


def cmd_verify(args) -> int:
    from .card import resolve_card_path
    from .provenance import check_provenance
    from .signing import load_public_key

    card_path = resolve_card_path(args.card)
    for k in args.key:
        load_public_key(k)  # a missing or unreadable key is a usage error (2), not a finding
    if args.base is not None:
        resolve_card_path(args.base)
    card = load_card(card_path, check_files=False)
    result = check_provenance(
        card,
        sha256=True,
        signature=True,
        trusted_keys=args.key,
        sources=args.source,
        base=args.base,
        files="exact" if args.exact else "named",
    )
    for f in result.findings:
        label = {"fail": "FAIL", "warn": "warn", "info": "ok  "}[f.severity]
        if f.severity == "info" and f.check != "provenance.signature":
            label = "info"
        print(f"{label} {f.check}: {f.message}")
    if result.passed:
        print(f"verified: {card_path}")
        return 0
    print(f"verification failed: {card_path}", file=sys.stderr)
    return 1


def cmd_diff(args) -> int:
    from .model_diff import diff_cards

    if args.top < 1:
        raise UsageError("--top must be >= 1")
    d = diff_cards(args.card_a, args.card_b, allow_code=args.allow_code, flops=not args.no_flops)
    if args.json == "-":
        print(json.dumps(d.to_json(), indent=2))
        return 0
    print(d.render(top=args.top))
    if args.json:
        Path(args.json).write_text(json.dumps(d.to_json(), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def cmd_keygen(args) -> int:
    from .signing import generate_keypair

    private, public = generate_keypair(args.out, force=args.force)
    print(f"private key: {private}  (keep secret; kpmodel sign --key {private})")
    print(f"public key:  {public}  (share; kpmodel verify --key {public})")
    return 0


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise UsageError(f"{path}: {what} not found")


# -- format detection ----------------------------------------------------------------------------
@dataclass
class Detected:
    format: str  # a card format name
    evidence: str  # why, in words
    tensors: dict[str, tuple[int, ...] | None] = field(default_factory=dict)  # name -> shape
    warnings: list[str] = field(default_factory=list)


# globals a plain ``torch.save(state_dict)`` pickle references
_STATE_DICT_GLOBALS = re.compile(
    r"^(collections (OrderedDict)"
    r"|torch\._utils _rebuild_(tensor|tensor_v2|parameter|parameter_with_state|qtensor)"
    r"|torch [A-Za-z]*Storage|torch\.storage [A-Za-z]*Storage"
    r"|torch (float|double|half|bfloat16|int|long|short|uint8|int8|bool|float16|float32|float64"
    r"|int16|int32|int64|complex64|complex128)"
    r"|torch device|torch Size|torch\.serialization _get_layout|torch strided)$"
)
_TENSOR_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[\w]+)+$")


def detect_format(path: str | Path) -> Detected:
    """Tell a checkpoint's format by its bytes (never executes or unpickles anything)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: checkpoint not found (or not a regular file)")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 8:
        n = struct.unpack("<Q", head[:8])[0]
        if 2 <= n <= min(size - 8, 1 << 28) and head[8:9] == b"{":
            found = _safetensors(path, n)
            if found is not None:
                return found
    if zipfile.is_zipfile(path):
        return _zip(path)
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return Detected(
            "pytorch",
            "a legacy (pre-zip) torch.save pickle",
            warnings=["legacy torch.save format: re-save it with a current torch or as "
                      "safetensors; kpmodel loads it with weights_only=True only"],
        )  # fmt: skip
    if _looks_like_onnx(path, size):
        return Detected("onnx", "an ONNX ModelProto (protobuf: ir_version, graph)")
    raise UsageError(
        f"{path}: cannot tell the format by content (not safetensors, a torch.save/TorchScript/"
        "torch.export zip, ONNX or a torch pickle)"
    )


def _safetensors(path: Path, n: int) -> Detected | None:
    with open(path, "rb") as f:
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    tensors = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if not (isinstance(v, dict) and "dtype" in v and "shape" in v):
            return None
        tensors[k] = tuple(int(i) for i in v["shape"])
    return Detected("safetensors", f"safetensors header with {len(tensors)} tensors", tensors)


def _zip(path: Path) -> Detected:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        inner = ["/".join(n.split("/")[1:]) for n in names]
        if any(i.startswith("code/") for i in inner):
            return Detected("torchscript", "a TorchScript zip (code/ members)")
        if "archive_format" in inner or any(
            i.startswith("models/") and i.endswith(".json") for i in inner
        ):
            tensors: dict[str, tuple[int, ...] | None] = {}
            for n, i in zip(names, inner, strict=True):
                m = re.fullmatch(r"data/weights/(.+)_weights_config\.json", i)
                if m:  # one per program; "model" is a whole model, others a submodule path
                    prefix = "" if m.group(1) == "model" else m.group(1) + "."
                    tensors |= {prefix + k: v for k, v in _pt2_tensors(z.read(n)).items()}
            return Detected("exported", "a torch.export .pt2 archive", tensors)
        pkl = [n for n, i in zip(names, inner, strict=True) if i == "data.pkl"]
        if pkl:
            globals_, strings = _scan_pickle(z.read(pkl[0]))
            if "ultralytics.nn.tasks PoseModel" in globals_:
                return Detected(
                    "ultralytics",
                    "an Ultralytics YOLO-pose checkpoint (a pickled PoseModel; loads only with the "
                    'reviewed allowlist = "ultralytics")',
                )
            tensors = {s: None for s in strings if _TENSOR_NAME.match(s)}
            det = Detected("pytorch", "a torch.save zip (data.pkl, no code/)", tensors)
            odd = sorted(g for g in globals_ if not _STATE_DICT_GLOBALS.match(g))
            if odd:
                det.warnings.append(
                    "its pickle references "
                    + ", ".join(o.replace(" ", ".") for o in odd[:5])
                    + (" ..." if len(odd) > 5 else "")
                    + ": not a plain state dict (a pickled module or object?); kpmodel loads "
                    "only with weights_only=True, which will likely refuse it — export the "
                    "state dict, ideally as safetensors"
                )
            return det
    raise UsageError(f"{path}: a zip archive, but not a torch.save, TorchScript or .pt2 file")


def _pt2_tensors(raw: bytes) -> dict[str, tuple[int, ...] | None]:
    try:
        config = json.loads(raw).get("config", {})
        return {
            k: tuple(int(s.get("as_int", -1)) for s in v["tensor_meta"]["sizes"])
            for k, v in config.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _scan_pickle(data: bytes) -> tuple[set[str], list[str]]:
    """(globals as 'module name', string constants) from pickle opcodes; nothing executed."""
    globals_: set[str] = set()
    strings: list[str] = []
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                globals_.add(arg)
            elif op.name == "STACK_GLOBAL":
                if len(strings) >= 2:
                    globals_.add(f"{strings[-2]} {strings[-1]}")
                else:
                    globals_.add("? ?")
            elif op.name in ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8") and (
                isinstance(arg, str)
            ):
                strings.append(arg)
    except (ValueError, EOFError, struct.error) as exc:
        globals_.add(f"unreadable-pickle {type(exc).__name__}")
    return globals_, strings


def _looks_like_onnx(path: Path, size: int) -> bool:
    """Walk a ModelProto's top-level protobuf fields: ir_version (1) first, a graph (7) later.

    Length-delimited fields are skipped by seeking, so a large graph is never read.
    """
    seen: list[int] = []
    with open(path, "rb") as f:

        def varint() -> int:
            shift = result = 0
            while True:
                b = f.read(1)
                if not b or shift > 63:
                    raise ValueError("truncated varint")
                result |= (b[0] & 0x7F) << shift
                if not b[0] & 0x80:
                    return result
                shift += 7

        try:
            while f.tell() < size and len(seen) < 64:
                tag = varint()
                number, wire = tag >> 3, tag & 7
                if not 1 <= number <= 25 or (not seen and tag != 0x08):
                    return False
                if wire == 0:
                    varint()
                elif wire == 2:
                    length = varint()
                    end = f.tell() + length
                    if end > size:
                        return False
                    f.seek(end)
                else:
                    return False
                seen.append(number)
        except ValueError:
            return False
    return bool(seen) and seen[0] == 1 and 7 in seen


# -- starter card --------------------------------------------------------------------------------
@dataclass
class ArchGuess:
    architecture: str | None
    kwargs: dict[str, object]
    note: str
    confident: bool = False
    num_keypoints: int | None = None


def guess_architecture(tensors: dict[str, tuple[int, ...] | None]) -> ArchGuess:
    """From tensor names (and shapes when known) to a builder and its kwargs; a guess."""
    names = set(tensors)

    def shape(name: str) -> tuple[int, ...] | None:
        return tensors.get(name)

    kps = shape("roi_heads.keypoint_predictor.kps_score_lowres.weight")
    if "roi_heads.keypoint_predictor.kps_score_lowres.weight" not in names:
        return ArchGuess(None, {}, "the tensor names match no builder known here")
    kwargs: dict[str, object] = {}
    cls = shape("roi_heads.box_predictor.cls_score.weight")
    if cls:
        kwargs["num_classes"] = cls[0]
    num_kp = kps[1] if kps and len(kps) == 4 else None
    if num_kp:
        kwargs["num_keypoints"] = num_kp
    has_layer4 = any(n.startswith("backbone.body.layer4.") for n in names)
    bottleneck = any(n.startswith("backbone.body.layer") and ".conv3." in n for n in names)
    kp_convs = sorted(
        {int(m.group(1)) for n in names if (m := re.match(r"roi_heads\.keypoint_head\.(\d+)\.weight$", n))}
    )  # fmt: skip
    if has_layer4 and bottleneck and len(kp_convs) == 8:
        return ArchGuess(
            "torchvision:keypointrcnn_resnet50_fpn",
            kwargs,
            "Keypoint R-CNN ResNet-50 FPN tensor names (layer4 bottlenecks, 8 keypoint convs)",
            confident=True,
            num_keypoints=num_kp,
        )
    if not has_layer4:
        if any(n.startswith("backbone.body.layer1.") for n in names):
            if bottleneck:
                backbone = "resnet50"
            else:
                blocks = {n.split(".")[3] for n in names if n.startswith("backbone.body.layer1.")}
                backbone = "resnet34" if len(blocks) >= 3 else "resnet18"
        else:
            backbone = "mobilenet_v3_large"
        kwargs = {"backbone": backbone, **kwargs}
        fpn = shape("backbone.fpn.layer_blocks.0.0.weight")
        if fpn:
            kwargs["fpn_channels"] = fpn[0]
        fc6 = shape("roi_heads.box_head.fc6.weight")
        if fc6:
            kwargs["box_head_dim"] = fc6[0]
        if kp_convs:
            kwargs["keypoint_head_depth"] = len(kp_convs)
            first = shape(f"roi_heads.keypoint_head.{kp_convs[0]}.weight")
            if first:
                kwargs["keypoint_head_channels"] = first[0]
        return ArchGuess(
            "pytest_kpmodel.zoo:keypointrcnn_compact",
            kwargs,
            "Keypoint R-CNN tensor names without a layer4 stage, like the compact zoo builder",
            num_keypoints=num_kp,
        )
    return ArchGuess(
        "torchvision:keypointrcnn_resnet50_fpn",
        kwargs,
        "Keypoint R-CNN tensor names, but not the standard ResNet-50 FPN layout: check it",
        num_keypoints=num_kp,
    )


def starter_card(checkpoint: Path, name: str | None = None) -> str:
    """The text of a starter card for ``checkpoint`` (valid TOML; guesses marked TODO)."""
    det = detect_format(checkpoint)
    digest = sha256_file(checkpoint)
    name = name or checkpoint.stem
    guess = guess_architecture(det.tensors)
    q = json.dumps
    lines = [
        f"# Starter model card written by `kpmodel card init` for {checkpoint.name}.",
        "# Review every TODO before you publish or sign it (`kpmodel sign kpmodel.toml --key ...`).",
        "schema = 1",
        "",
        "[model]",
        f"name = {q(name)}  # TODO: the published model name",
        'version = "0.1.0"  # TODO: the published version',
        f"format = {q(det.format)}  # detected from content: {det.evidence}",
        f"weights = {q(checkpoint.name)}",
        f"sha256 = {q(digest)}",
    ]
    for w in det.warnings:
        lines.append(f"# WARNING: {w}")
    if det.format == "ultralytics":
        lines += [
            "# opt in to the shipped, reviewed list of the classes such a checkpoint pickles",
            "# (`kpmodel scan --show-allowlist --allowlist ultralytics` prints it):",
            'allowlist = "ultralytics"',
            "# [model.kwargs] imgsz, letterbox, conf, iou, max_det: optional, default to",
            "# Ultralytics' val settings (imgsz from the checkpoint's train_args)",
        ]
    needs_arch = det.format in ("safetensors", "pytorch")
    if guess.architecture:
        why = "" if guess.confident else " — a guess: check it"
        lines.append(f"architecture = {q(guess.architecture)}  # TODO: confirm ({guess.note}{why})")
    elif needs_arch:
        lines += [
            "# TODO: the builder of this state dict, as 'package.module:factory' (its kwargs go in",
            "# [model.kwargs]); e.g. torchvision:keypointrcnn_resnet50_fpn. The tensor names",
            "# match no builder known to kpmodel, so this placeholder fails until you replace it:",
            'architecture = "TODO_replace_me.module:factory"',
        ]
    else:
        lines += [
            f"# architecture: not needed for format {det.format!r} (the file holds the graph);",
            '# set it only to name the family, e.g. "torchvision:keypointrcnn_resnet50_fpn".',
        ]
    if guess.architecture:
        lines.append("")
        lines.append("[model.kwargs]  # TODO: confirm; guessed from tensor names and shapes")
        for k, v in guess.kwargs.items():
            lines.append(f"{k} = {q(v)}")
        if guess.architecture.endswith("keypointrcnn_compact"):
            lines += [
                "# min_size = 320  # TODO: the input resize the model was trained with",
                "# max_size = 512",
            ]
        if "num_keypoints" not in guess.kwargs:
            lines.append("# num_keypoints = 17  # TODO: not readable without unpickling")
    lines += ["", "# [keypoints]: left out, so the COCO-17 person set applies (names, flip pairs,"]
    lines.append("# OKS sigmas, skeleton). A model with other keypoints names a preset or lists")
    lines.append("# them:")
    if guess.num_keypoints and guess.num_keypoints != 17:
        fits = [n for n, ks in PRESETS.items() if ks.num_keypoints == guess.num_keypoints]
        hint = f' (preset = "{fits[0]}"?)' if fits else ""
        lines.append(
            f"# TODO: this model predicts {guess.num_keypoints} keypoints, not 17: add "
            f"[keypoints]{hint}"
        )
    lines += [
        "# [keypoints]",
        '# preset = "crowdpose14"      # coco17 | crowdpose14 | coco_wholebody133; or:',
        '# names = ["...", ...]        # one per predicted keypoint, in output order',
        '# flip_pairs = [["left_x", "right_x"], ...]',
        "# sigmas = [0.025, ...]       # one OKS sigma per name",
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
    return "\n".join(lines)


def init_card(checkpoint: str | Path, *, name: str | None = None, force: bool = False) -> Path:
    """Write ``kpmodel.toml`` beside ``checkpoint``; refuses to overwrite without ``force``."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise UsageError(f"{checkpoint}: checkpoint not found (or not a regular file)")
    out = checkpoint.parent / CARD_FILENAME
    if out.exists() and not force:
        raise UsageError(f"{out}: a card already exists; pass --force to replace it")
    text = starter_card(checkpoint, name)
    from .signing import atomic_write

    atomic_write(out, text.encode("utf-8"), mode=0o644)
    load_card(out, check_files=False)  # the starter card must always parse
    return out
