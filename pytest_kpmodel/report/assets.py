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
``DIR/images/``), :func:`save_png_bytes` and :func:`add_file` (copy an existing image, e.g. a
stability rendering). What a finished run contributes is collected by :mod:`.write`.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..atomic import write_text

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
    """The page: readable by others (a web server), never half written."""
    return write_text(path, text)
