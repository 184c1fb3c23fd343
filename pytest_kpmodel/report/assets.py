"""Files beside ``kp-report.json`` that the HTML page shows, and how they are referenced.

The artifacts convention
------------------------
``kp-report.json`` has an ``artifacts`` key: a list of entries

    {"kind": "gallery", "title": "image 17: 0/2 people found", "path": "images/gallery-0.jpg",
     "meta": {...}}

* ``kind`` picks the page section: ``gallery`` (sample predictions), ``feature_maps``
  (backbone features, in the model section), ``robustness`` (shrunk failing examples,
  stability renderings, trigger patches), anything else in "Other figures". ``meta.section``
  (one of :data:`SECTIONS`) overrides the choice.
* ``path`` is relative to the report folder (POSIX separators, inside the folder; by default
  under ``images/``), or ``null`` for an entry that only carries a note: ``meta.skipped`` (why
  the figure could not be made) or ``meta.error``.
* ``meta`` holds JSON numbers/strings the page shows beside the image (e.g. ``recall``,
  ``missed``, ``image_id``).

``kpmodel report DIR`` re-renders ``index.html`` from the JSON and these files alone; at render
time :class:`Assets` inlines each file as a ``data:`` URI so the page stays self-contained. Only
PNG, JPEG, GIF, WebP and SVG files inside the folder are inlined; anything else (a path that
leaves the folder, a missing file, an unknown type) shows as a note naming the path.

Helpers for whoever produces artifacts: :func:`artifact`, :func:`save_image` (a PIL image into
``DIR/images/``), :func:`add_file` (copy an existing image, e.g. a stability rendering) and
:func:`collect_artifacts` (gallery and feature maps from a finished run). :func:`card_section`
gives the model card as the report's ``card`` section.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

IMAGES_DIR = "images"
SECTIONS = ("provenance", "license", "security", "accuracy", "speed", "robustness", "gallery")
KIND_SECTIONS = {
    "gallery": "gallery",
    "feature_maps": "provenance",
    "robustness": "robustness",
    "failure": "robustness",
    "stability": "robustness",
    "trigger": "robustness",
    "accuracy": "accuracy",
    "speed": "speed",
}
MAX_INLINE_BYTES = 16 * 2**20
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def artifact(
    kind: str, title: str, path: str | None = None, meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One ``artifacts`` entry (see the module docstring)."""
    return {"kind": str(kind), "title": str(title), "path": path, "meta": dict(meta or {})}


def section_of(entry: Mapping[str, Any]) -> str:
    """The page section an artifact entry belongs to ("other" when none fits)."""
    meta = entry.get("meta") if isinstance(entry.get("meta"), Mapping) else {}
    wanted = meta.get("section")
    if wanted in SECTIONS:
        return str(wanted)
    return KIND_SECTIONS.get(str(entry.get("kind", "")), "other")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "image"


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/images/<stem><suffix>``, numbered when taken; the images folder is created."""
    images = Path(folder) / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    stem = _slug(stem)
    path = images / f"{stem}{suffix}"
    i = 1
    while path.exists():
        path = images / f"{stem}-{i}{suffix}"
        i += 1
    return path


def relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()


def save_image(
    image: Any,
    folder: Path,
    name: str,
    kind: str,
    title: str,
    meta: Mapping[str, Any] | None = None,
    fmt: str = "png",
) -> dict[str, Any]:
    """Write a PIL image to ``folder/images/<name>.<png|jpg>``; the artifact entry for it."""
    fmt = fmt.lower()
    suffix = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg"}.get(fmt)
    if suffix is None:
        raise ValueError(f"image format must be png or jpeg, got {fmt!r}")
    path = unique_path(folder, name, suffix)
    if suffix == ".png":
        image.save(path, format="PNG", optimize=True)
    else:
        image.convert("RGB").save(path, format="JPEG", quality=90, subsampling=0)
    return artifact(kind, title, relative(path, folder), meta)


def save_png_bytes(
    data: bytes,
    folder: Path,
    name: str,
    kind: str,
    title: str,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write encoded PNG bytes (e.g. a matplotlib figure) to ``folder/images/``."""
    path = unique_path(folder, name, ".png")
    path.write_bytes(data)
    return artifact(kind, title, relative(path, folder), meta)


def add_file(
    src: str | os.PathLike[str],
    folder: Path,
    kind: str,
    title: str,
    meta: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Copy an existing image (e.g. a stability rendering, a shrunk failure) into
    ``folder/images/`` and return its artifact entry; a missing file gives a note entry."""
    src = Path(src)
    if not src.is_file():
        return artifact(kind, title, None, {**(meta or {}), "error": f"{src}: file not found"})
    path = unique_path(folder, name or src.stem, src.suffix.lower() or ".png")
    shutil.copyfile(src, path)
    return artifact(kind, title, relative(path, folder), meta)


# -- inlining ---------------------------------------------------------------------------------------
def sniff_mime(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:512].lstrip()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096]):
        return "image/svg+xml"
    return None


class Assets:
    """Resolves artifact paths inside the report folder to ``data:`` URIs (or a reason)."""

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        self.folder = Path(folder).resolve() if folder is not None else None

    def data_uri(self, path: Any) -> tuple[str | None, str | None]:
        """(data URI, None) or (None, why it cannot be shown)."""
        if not isinstance(path, str) or not path:
            return None, "no file"
        if self.folder is None:
            return None, f"{path}: no report folder to read it from"
        rel = Path(path)
        if rel.is_absolute() or path.startswith(("/", "\\")):
            return None, f"{path}: not a path relative to the report folder"
        full = (self.folder / rel).resolve()
        if not full.is_relative_to(self.folder):
            return None, f"{path}: outside the report folder"
        if not full.is_file():
            return None, f"{path}: file not found"
        if full.stat().st_size > MAX_INLINE_BYTES:
            return None, f"{path}: larger than {MAX_INLINE_BYTES // 2**20} MiB, not inlined"
        data = full.read_bytes()
        mime = sniff_mime(data)
        if mime is None:
            return None, f"{path}: not a PNG, JPEG, GIF, WebP or SVG image"
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", None


def write_text_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the page from a web server
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- the run's own pieces ----------------------------------------------------------------------------
def card_section(card: Any) -> dict[str, Any]:
    """The model card as the report's ``card`` section (what the HTML's model card shows)."""

    def s(x: Any) -> Any:
        return None if x is None else str(x)

    m, p, lic, dep = card.model, card.provenance, card.license, card.dependencies
    ks = card.keypoints
    return {
        "path": s(card.path),
        "model": {
            "name": m.name,
            "version": m.version,
            "format": m.format,
            "weights": s(m.weights),
            "sha256": getattr(m, "sha256", None),
            "architecture": m.architecture,
            "kwargs": {
                k: v for k, v in m.kwargs.items() if isinstance(v, str | int | float | bool)
            },
        },
        "provenance": {
            "source": p.source,
            "base": s(p.base),
            "signature": s(p.signature),
            "modifications": list(p.modifications),
        },
        "license": {"spdx": lic.spdx, "file": s(lic.file)},
        "dependencies": {
            "python": dep.python,
            "requires": list(dep.requires),
            "cuda": dep.cuda,
            "gpu_arch": dep.gpu_arch,
            "os": list(dep.os),
        },
        "claims": dict(card.claims),
        "keypoints": {
            "names": list(ks.names),
            "flip_pairs": [list(x) for x in ks.flip_pairs],
            "skeleton": [list(x) for x in ks.skeleton],
        },
    }


def _gt_by_image(dataset: Any) -> dict[int, list[dict[str, Any]]]:
    by_image: dict[int, list[dict[str, Any]]] = {i: [] for i in dataset.image_ids}
    for ann in dataset.coco.get("annotations", []):
        if ann.get("category_id") == dataset.category_id and ann.get("image_id") in by_image:
            by_image[ann["image_id"]].append(ann)
    return by_image


def _note(kind: str, title: str, exc: BaseException) -> dict[str, Any]:
    return artifact(kind, title, None, {"error": f"{type(exc).__name__}: {exc}"})


def collect_artifacts(
    session: Any, folder: Path, *, gallery: int = 8, feature_maps: int = 2
) -> list[dict[str, Any]]:
    """Gallery, backbone feature maps and robustness renderings from what the run computed.

    Never triggers work the run did not do: the gallery needs the predictions, the feature
    maps a loaded model (and the baseline's, when it was loaded, for the side by side); the
    renderings ``stability.measure(save=...)`` wrote (``saved`` paths of the stability entries
    in ``session.sections["robustness"]``) are copied into ``folder/images/``. A part that fails
    becomes a note entry (``meta.error``) instead of breaking the report.
    """
    from ..data import load_images

    folder = Path(folder)
    out: list[dict[str, Any]] = []
    dataset = session.computed("dataset")
    preds = session.computed("predictions")
    if gallery and dataset is not None and preds is not None:
        from .gallery import render_gallery

        try:
            by_image = _gt_by_image(dataset)
            pos = {image_id: i for i, image_id in enumerate(dataset.image_ids)}
            idx = [pos[i] for i in preds.image_ids if i in pos]
            gt = [by_image[dataset.image_ids[i]] for i in idx]

            def load(k: int):
                return load_images(dataset, [idx[k]])[0]

            out += render_gallery(
                load,
                gt,
                preds.predictions[: len(idx)],
                session.card.keypoints,
                folder,
                n=gallery,
                image_ids=[dataset.image_ids[i] for i in idx],
            )
        except Exception as exc:  # noqa: BLE001 - the report must still be written
            out.append(_note("gallery", "sample predictions", exc))
    model = session.computed("model")
    if feature_maps and dataset is not None and model is not None and len(dataset):
        from .feature_maps import render_feature_maps

        try:
            base = session.computed("baseline")
            base_model = base.computed("model") if base is not None else None
            idx = list(range(min(feature_maps, len(dataset))))
            out += render_feature_maps(
                model,
                load_images(dataset, idx),
                folder,
                base_model=base_model,
                image_ids=[dataset.image_ids[i] for i in idx],
            )
        except Exception as exc:  # noqa: BLE001
            out.append(_note("feature_maps", "backbone feature maps", exc))
    out += stability_artifacts(getattr(session, "sections", {}).get("robustness"), folder)
    return out


def stability_artifacts(robustness: Any, folder: Path) -> list[dict[str, Any]]:
    """Copy the renderings named by the stability entries' ``saved`` lists into
    ``folder/images/``; ``robustness`` artifacts with the image's mean OKS in ``meta``."""
    if not isinstance(robustness, Mapping):
        return []
    entries = robustness.get("stability")
    entries = [entries] if isinstance(entries, Mapping) else entries
    out: list[dict[str, Any]] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("saved"), list):
            continue
        per_image = {
            str(r.get("index")): r for r in entry.get("per_image") or [] if isinstance(r, Mapping)
        }
        what = entry.get("perturbation") or entry.get("kind") or "perturbation"
        for src in entry["saved"]:
            stem = Path(str(src)).stem
            row = per_image.get(stem.lstrip("0") or "0", {})
            meta = {
                "perturbation": what,
                "mean_oks": row.get("mean_oks"),
                "index": row.get("index"),
            }
            out.append(
                add_file(
                    src,
                    folder,
                    "robustness",
                    f"{what}: image {stem}",
                    meta,
                    name=f"stability-{entry.get('kind', 'x')}-{stem}",
                )  # fmt: skip
            )
    return out
