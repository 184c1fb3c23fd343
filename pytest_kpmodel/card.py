"""``kpmodel.toml`` -> ``ModelCard``, validated with errors that name the key and the file.

Unknown keys are errors on purpose: a typo such as ``sha265`` must not silently disable a check.
Paths are relative to the card. Files the model owns (weights, signature, license text) must stay
inside the card's folder; ``provenance.base`` and ``[dataset]`` may point elsewhere.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import CardError, did_you_mean
from .keypoints import COCO17, PRESETS, KeypointSet
from .keypoints import preset as keypoint_preset

CARD_FILENAME = "kpmodel.toml"
SCHEMA_VERSION = 1
FORMATS = (
    "safetensors", "pytorch", "torchscript", "exported", "onnx", "python", "ultralytics",
    "detectron2",
)  # fmt: skip
# Formats that run code shipped with the model when loaded (torch.export.load unpickles parts
# of a .pt2 archive with weights_only=False).
CODE_FORMATS = ("python", "torchscript", "exported")
# [model] output_layout for format "onnx": torchvision's detection outputs (the default),
# Ultralytics' raw YOLO-pose head [1, 4 + nc + K*3, N], detectron2's export
OUTPUT_LAYOUTS = ("torchvision", "yolo-pose", "detectron2")
CLAIM_KEYS = (
    "box_ap", "box_ap50", "box_ap75", "kp_ap", "kp_ap50", "kp_ap75", "kp_ar",
    "fps", "latency_p50_ms", "latency_p90_ms", "vram_mib",
)  # fmt: skip
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelSection:
    name: str
    format: str
    weights: Path | None
    architecture: str | None
    version: str = ""
    sha256: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    # opt-in reviewed pickle allow-lists (security.allowlist.PROFILES), e.g. ("ultralytics",)
    allowlist: tuple[str, ...] = ()
    # how an ONNX model's outputs are decoded (format "onnx" only)
    output_layout: str = "torchvision"


@dataclass(frozen=True)
class Provenance:
    source: str | None = None
    base: Path | None = None
    signature: Path | None = None
    modifications: tuple[str, ...] = ()


@dataclass(frozen=True)
class License:
    spdx: str | None = None
    file: Path | None = None


@dataclass(frozen=True)
class Dependencies:
    python: str | None = None
    requires: tuple[str, ...] = ()
    cuda: str | None = None
    gpu_arch: str | None = None
    os: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetRef:
    annotations: Path | None = None
    images: Path | None = None
    # How this set's ground truth is read (see metrics/inputs.py): they describe the card's own
    # annotation file, so they do not apply to a set passed with --kp-dataset.
    allow_box_area: bool = False  # accept 'area' == box w*h on every annotation (OCHuman)
    area_from_box: float | None = None  # 'area' of annotations without one: this * box w*h


@dataclass(frozen=True)
class ModelCard:
    path: Path
    model: ModelSection
    keypoints: KeypointSet = COCO17
    provenance: Provenance = Provenance()
    license: License = License()
    dependencies: Dependencies = Dependencies()
    claims: dict[str, float] = field(default_factory=dict)
    dataset: DatasetRef = DatasetRef()
    schema: int = SCHEMA_VERSION
    # The card's TOML when it was built in memory from a checkpoint passed as --kp-model
    # (``path`` is then the checkpoint): nobody pinned its digest, license or claims.
    text: str | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def unpinned(self) -> bool:
        """Built from a bare checkpoint, not read from a card the vendor published."""
        return self.text is not None

    def content(self) -> bytes:
        """The card's bytes (what the prediction cache key digests)."""
        return self.text.encode("utf-8") if self.text is not None else self.path.read_bytes()

    @property
    def runs_code(self) -> bool:
        return self.model.format in CODE_FORMATS

    def named_files(self) -> dict[str, Path]:
        """Every file the card names that belongs to the model, by the key naming it."""
        files = {}
        if self.model.weights is not None:
            files["model.weights"] = self.model.weights
        if self.provenance.signature is not None:
            files["provenance.signature"] = self.provenance.signature
        if self.license.file is not None:
            files["license.file"] = self.license.file
        return files


def resolve_card_path(path: str | Path) -> Path:
    """A card file, or a folder holding ``kpmodel.toml``, to the card file's absolute path."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / CARD_FILENAME
        if not candidate.is_file():
            raise CardError(p, f"this folder has no {CARD_FILENAME}; pass the card file itself")
        p = candidate
    elif not p.exists():
        raise CardError(
            p, "model card not found; --kp-model takes a kpmodel.toml, its folder or a checkpoint"
        )
    elif not p.is_file():
        raise CardError(p, "model card is not a regular file")
    return p.resolve()


def load_card(path: str | Path, *, check_files: bool = True) -> ModelCard:
    """Parse and validate a card. ``check_files=False`` skips existence checks (for tooling)."""
    card_path = resolve_card_path(path)
    try:
        raw = tomllib.loads(card_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CardError(card_path, f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise CardError(card_path, "not a UTF-8 text file") from None
    return _Parser(card_path, raw, check_files).card()


def parse_card(text: str, path: Path, *, check_files: bool = True) -> ModelCard:
    """A card held in memory (``text``), its paths relative to ``path``'s folder; errors name
    ``path``. The card remembers its text (``ModelCard.unpinned``)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(path, f"not valid TOML: {exc}") from None
    return replace(_Parser(Path(path), raw, check_files).card(), text=text)


class _Parser:
    def __init__(self, path: Path, raw: dict[str, Any], check_files: bool) -> None:
        self.path = path
        self.raw = raw
        self.check_files = check_files

    def fail(self, key: str, message: str) -> CardError:
        return CardError(self.path, message, key)

    # -- typed accessors -------------------------------------------------------------------------
    def table(self, name: str, allowed: tuple[str, ...], required: bool = False) -> dict[str, Any]:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise self.fail(name, "missing table; every card needs it")
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{name}.{key}",
                    f"unknown key; {did_you_mean(key, allowed)}allowed in [{name}]: "
                    + ", ".join(allowed),
                )
        return value

    def string(self, table: dict[str, Any], section: str, key: str, required: bool = False):
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{section}.{key}", "missing; this key is required")
            return None
        if not isinstance(value, str):
            raise self.fail(f"{section}.{key}", f"must be a string, got {_tname(value)} {value!r}")
        if required and not value.strip():
            raise self.fail(f"{section}.{key}", "must not be empty")
        return value

    def strings(self, table: dict[str, Any], section: str, key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{section}.{key}", f"must be a list of strings, got {value!r}")
        return tuple(value)

    def file(
        self, table: dict[str, Any], section: str, key: str, *, inside: bool, must_exist: bool
    ) -> Path | None:
        value = self.string(table, section, key)
        if value is None:
            return None
        p = Path(value).expanduser()
        resolved = (self.path.parent / p) if not p.is_absolute() else p
        resolved = Path(_normpath(resolved))
        if inside and not resolved.is_relative_to(self.path.parent):
            raise self.fail(
                f"{section}.{key}",
                f"path {value!r} escapes the card's folder {self.path.parent}; "
                "files the model owns must sit beside its card",
            )
        if must_exist and self.check_files and not resolved.exists():
            raise self.fail(f"{section}.{key}", f"file not found: {resolved}")
        return resolved

    # -- sections ----------------------------------------------------------------------------------
    def card(self) -> ModelCard:
        top = ("schema", "model", "keypoints", "provenance", "license", "dependencies",
               "claims", "dataset")  # fmt: skip
        for key in self.raw:
            if key not in top:
                raise self.fail(
                    key, f"unknown top-level key; {did_you_mean(key, top)}allowed: {', '.join(top)}"
                )
        schema = self.raw.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION or isinstance(schema, bool):
            raise self.fail("schema", f"unsupported schema {schema!r}; this plugin reads schema 1")
        return ModelCard(
            path=self.path,
            model=self.model(),
            keypoints=self.keypoints(),
            provenance=self.provenance(),
            license=self.license(),
            dependencies=self.dependencies(),
            claims=self.claims(),
            dataset=self.dataset(),
            schema=schema,
        )

    def model(self) -> ModelSection:
        allowed = ("name", "version", "format", "weights", "sha256", "architecture", "kwargs",
                   "allowlist", "output_layout")  # fmt: skip
        t = self.table("model", allowed, required=True)
        name = self.string(t, "model", "name", required=True)
        version = self.string(t, "model", "version") or ""
        fmt = self.string(t, "model", "format", required=True)
        if fmt not in FORMATS:
            raise self.fail("model.format", f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
        weights = self.file(t, "model", "weights", inside=True, must_exist=True)
        if weights is None and fmt != "python":
            raise self.fail("model.weights", f"missing; format {fmt!r} needs a weights file")
        if weights is not None and self.check_files and weights.is_dir():
            raise self.fail("model.weights", f"is a folder, not a file: {weights}")
        sha = self.string(t, "model", "sha256")
        if sha is not None and not _SHA256.match(sha.lower()):
            raise self.fail("model.sha256", f"must be 64 hex digits, got {sha!r}")
        arch = self.string(t, "model", "architecture")
        if arch is None and fmt in ("safetensors", "pytorch", "python"):
            raise self.fail(
                "model.architecture",
                f"missing; format {fmt!r} needs a builder such as "
                "'torchvision:keypointrcnn_resnet50_fpn' or 'package.module:factory'",
            )
        if arch is not None and ":" not in arch:
            raise self.fail(
                "model.architecture", f"{arch!r} must look like 'package.module:factory'"
            )
        kwargs = t.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise self.fail("model.kwargs", f"must be a table, got {_tname(kwargs)}")
        layout = self.string(t, "model", "output_layout")
        if layout is not None and fmt != "onnx":
            raise self.fail("model.output_layout", f"applies to format 'onnx' only, not {fmt!r}")
        if layout is not None and layout not in OUTPUT_LAYOUTS:
            raise self.fail(
                "model.output_layout",
                f"unknown layout {layout!r}; one of: {', '.join(OUTPUT_LAYOUTS)}",
            )
        return ModelSection(
            name=name,
            version=version,
            format=fmt,
            weights=weights,
            sha256=sha.lower() if sha else None,
            architecture=arch,
            kwargs=dict(kwargs),
            allowlist=self.allowlist(t),
            output_layout=layout or "torchvision",
        )

    def allowlist(self, t: dict[str, Any]) -> tuple[str, ...]:
        """``allowlist = "ultralytics"`` (or a list of names): opt-in reviewed allow-lists."""
        from .security.allowlist import PROFILES

        raw = t.get("allowlist")
        if raw is None:
            return ()
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self.fail("model.allowlist", f"must be a name or a list of names, got {raw!r}")
        for n in names:
            if n not in PROFILES:
                raise self.fail(
                    "model.allowlist",
                    f"unknown allow-list {n!r}; shipped, reviewed lists: {', '.join(PROFILES)}",
                )
        return tuple(dict.fromkeys(names))

    def keypoints(self) -> KeypointSet:
        allowed = ("preset", "names", "flip_pairs", "sigmas", "skeleton")
        t = self.table("keypoints", allowed)
        if not t:
            return COCO17
        base = COCO17
        preset_name = self.string(t, "keypoints", "preset")
        if preset_name is not None:
            found = keypoint_preset(preset_name)
            if found is None:
                raise self.fail(
                    "keypoints.preset",
                    f"unknown preset {preset_name!r}; known presets: {', '.join(PRESETS)}",
                )
            base = found
        names = self.strings(t, "keypoints", "names") if "names" in t else base.names
        if len(set(names)) != len(names):
            raise self.fail("keypoints.names", "names must be unique")
        # A named preset lends its sigmas, pairs and skeleton to renamed keypoints position by
        # position; without one, only COCO's own names get COCO's values.
        inherit = names == base.names or (
            preset_name is not None and len(names) == base.num_keypoints
        )
        sigmas_raw = t.get("sigmas", None)
        if sigmas_raw is None:
            if not inherit:
                raise self.fail(
                    "keypoints.sigmas",
                    "missing; a custom keypoint set needs one OKS sigma per name",
                )
            sigmas = base.sigmas
        else:
            if not isinstance(sigmas_raw, list) or not all(
                isinstance(s, int | float) and not isinstance(s, bool) for s in sigmas_raw
            ):
                raise self.fail(
                    "keypoints.sigmas", f"must be a list of numbers, got {sigmas_raw!r}"
                )
            sigmas = tuple(float(s) for s in sigmas_raw)
        if len(sigmas) != len(names):
            raise self.fail(
                "keypoints.sigmas", f"has {len(sigmas)} values for {len(names)} keypoint names"
            )
        if any(s <= 0 for s in sigmas):
            raise self.fail("keypoints.sigmas", "every sigma must be > 0")
        pairs_raw = t.get("flip_pairs", None)
        if pairs_raw is None:
            position = {n: i for i, n in enumerate(base.names)}
            pairs = (
                tuple((names[position[a]], names[position[b]]) for a, b in base.flip_pairs)
                if inherit
                else ()
            )
        else:
            pairs = self._pairs(pairs_raw, names)
        skeleton_raw = t.get("skeleton", None)
        if skeleton_raw is None:
            skeleton = base.skeleton if inherit else ()
        else:
            skeleton = self._skeleton(skeleton_raw, names)
        ks = KeypointSet(names=names, flip_pairs=pairs, sigmas=sigmas, skeleton=skeleton)
        return replace(ks, preset=base.preset) if ks == base else ks

    def _pairs(self, raw: Any, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        key = "keypoints.flip_pairs"
        if not isinstance(raw, list):
            raise self.fail(key, f"must be a list of [left, right] name pairs, got {raw!r}")
        seen: set[str] = set()
        pairs = []
        for pair in raw:
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair)
            ):
                raise self.fail(key, f"each entry must be a [left, right] name pair, got {pair!r}")
            for n in pair:
                if n not in names:
                    raise self.fail(key, f"{n!r} is not one of keypoints.names")
                if n in seen:
                    raise self.fail(key, f"{n!r} appears in more than one pair")
                seen.add(n)
            pairs.append((pair[0], pair[1]))
        return tuple(pairs)

    def _skeleton(self, raw: Any, names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        key = "keypoints.skeleton"
        if not isinstance(raw, list):
            raise self.fail(key, f"must be a list of [a, b] edges, got {raw!r}")
        edges = []
        for edge in raw:
            if not (isinstance(edge, list) and len(edge) == 2):
                raise self.fail(key, f"each edge must be [a, b], got {edge!r}")
            idx = []
            for end in edge:
                if isinstance(end, str) and end in names:
                    idx.append(names.index(end))
                elif isinstance(end, int) and not isinstance(end, bool) and 0 <= end < len(names):
                    idx.append(end)
                else:
                    raise self.fail(key, f"{end!r} is neither a keypoint name nor a valid index")
            edges.append((idx[0], idx[1]))
        return tuple(edges)

    def provenance(self) -> Provenance:
        t = self.table("provenance", ("source", "base", "signature", "modifications"))
        return Provenance(
            source=self.string(t, "provenance", "source"),
            base=self.file(t, "provenance", "base", inside=False, must_exist=False),
            signature=self.file(t, "provenance", "signature", inside=True, must_exist=False),
            modifications=self.strings(t, "provenance", "modifications"),
        )

    def license(self) -> License:
        t = self.table("license", ("spdx", "file"))
        return License(
            spdx=self.string(t, "license", "spdx"),
            file=self.file(t, "license", "file", inside=True, must_exist=True),
        )

    def dependencies(self) -> Dependencies:
        t = self.table("dependencies", ("python", "requires", "cuda", "gpu_arch", "os"))
        deps = Dependencies(
            python=self.string(t, "dependencies", "python"),
            requires=self.strings(t, "dependencies", "requires"),
            cuda=self.string(t, "dependencies", "cuda"),
            gpu_arch=self.string(t, "dependencies", "gpu_arch"),
            os=self.strings(t, "dependencies", "os"),
        )
        self._check_specifiers(deps)
        return deps

    def _check_specifiers(self, deps: Dependencies) -> None:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        for key, spec in (("python", deps.python), ("cuda", deps.cuda)):
            if spec is not None:
                try:
                    SpecifierSet(spec)
                except InvalidSpecifier:
                    raise self.fail(
                        f"dependencies.{key}", f"{spec!r} is not a version specifier like '>=3.10'"
                    ) from None
        for req in deps.requires:
            try:
                Requirement(req)
            except InvalidRequirement as exc:
                raise self.fail("dependencies.requires", f"{req!r}: {exc}") from None

    def claims(self) -> dict[str, float]:
        t = self.table("claims", CLAIM_KEYS)
        out = {}
        for key, value in t.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(f"claims.{key}", f"must be a number, got {_tname(value)} {value!r}")
            out[key] = float(value)
        return out

    def dataset(self) -> DatasetRef:
        t = self.table("dataset", ("annotations", "images", "allow_box_area", "area_from_box"))
        allow = t.get("allow_box_area", False)
        if not isinstance(allow, bool):
            raise self.fail(
                "dataset.allow_box_area", f"must be true or false, got {_tname(allow)} {allow!r}"
            )
        factor = t.get("area_from_box")
        if factor is not None and (
            isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= 1
        ):
            raise self.fail(
                "dataset.area_from_box",
                f"must be a number in (0, 1] (CrowdPose's evaluation uses 0.53), got {factor!r}",
            )
        return DatasetRef(
            annotations=self.file(t, "dataset", "annotations", inside=False, must_exist=False),
            images=self.file(t, "dataset", "images", inside=False, must_exist=False),
            allow_box_area=allow,
            area_from_box=None if factor is None else float(factor),
        )


def _tname(value: Any) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", list: "list",
            dict: "table"}.get(type(value), type(value).__name__)  # fmt: skip


def _normpath(p: Path) -> str:
    import os

    return os.path.normpath(str(p))
