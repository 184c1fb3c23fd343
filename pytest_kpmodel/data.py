"""COCO keypoint evaluation sets: annotation loading with precise errors, image decoding in
DataLoader workers (so decoding overlaps inference), and batching.

Workers never raise: an undecodable image comes back as an error string, and the main process
raises one ``DatasetError`` naming the file, instead of DataLoader's re-raised worker traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data_layouts import WHOLEBODY_K, assemble_wholebody, fill_missing_areas, is_wholebody
from .errors import DatasetError
from .keypoints import KeypointSet


@dataclass
class CocoKeypointDataset:
    annotations_path: Path
    images_dir: Path
    coco: dict[str, Any]  # the annotation file, possibly restricted to the first max_images
    category_id: int  # the keypoint category (person)
    image_ids: list[int] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    digest: str = ""  # sha256 of the annotation file (with the image subset), for cache keys
    notes: list[str] = field(default_factory=list)  # how the file was read (data_layouts)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_keypoints(self) -> int:
        cat = next(c for c in self.coco["categories"] if c["id"] == self.category_id)
        return len(cat.get("keypoints", []))

    def subset(self, indices: list[int]) -> CocoKeypointDataset:
        keep = {self.image_ids[i] for i in indices}
        return _build(
            self.annotations_path,
            self.images_dir,
            _restrict(self.coco, keep),
            self.digest,
            list(self.notes),
        )


def load_dataset(
    annotations: str | Path,
    images: str | Path | None = None,
    max_images: int | None = None,
    *,
    area_from_box: float | None = None,
    keypoints: KeypointSet | None = None,
) -> CocoKeypointDataset:
    """Load and check a COCO keypoint file. ``area_from_box``: annotations without 'area' get
    that times their box w*h (CrowdPose: 0.53). ``keypoints``: the model's keypoint set; a
    133-keypoint set reads a COCO-WholeBody file's five parts as one 133-keypoint layout."""
    ann_path = Path(annotations).expanduser().resolve()
    if not ann_path.is_file():
        raise DatasetError(f"{ann_path}: annotation file not found")
    raw = ann_path.read_bytes()
    try:
        coco = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{ann_path}: not valid JSON: {exc}") from None
    _validate(coco, ann_path)
    notes: list[str] = []
    if (
        keypoints is not None
        and keypoints.num_keypoints == WHOLEBODY_K
        and _names_count(coco) != WHOLEBODY_K
        and is_wholebody(coco)
    ):
        try:
            coco, note = assemble_wholebody(coco)
        except DatasetError as exc:
            raise DatasetError(f"{ann_path}: {exc}") from None
        notes.append(note)
    if area_from_box is not None:
        coco, note = fill_missing_areas(coco, area_from_box)
        notes += [note] if note else []
    if images is None:
        beside = ann_path.parent / "images"
        images_dir = beside if beside.is_dir() else ann_path.parent
    else:
        images_dir = Path(images).expanduser().resolve()
    if not images_dir.is_dir():
        raise DatasetError(f"{images_dir}: image folder not found (for {ann_path})")
    digest = hashlib.sha256(raw).hexdigest()
    if max_images is not None:
        if max_images < 1:
            raise DatasetError(f"--kp-max-images must be >= 1, got {max_images}")
        ids = sorted(img["id"] for img in coco["images"])[:max_images]
        coco = _restrict(coco, set(ids))
        digest = hashlib.sha256(f"{digest}:{max_images}".encode()).hexdigest()
    return _build(ann_path, images_dir, coco, digest, notes)


def _names_count(coco: dict) -> int:
    cat = next(c for c in coco["categories"] if isinstance(c, dict) and c.get("keypoints"))
    return len(cat["keypoints"])


def _build(
    ann_path: Path, images_dir: Path, coco: dict, digest: str, notes: list[str]
) -> CocoKeypointDataset:
    images = sorted(coco["images"], key=lambda im: im["id"])
    files = [images_dir / im["file_name"] for im in images]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DatasetError(f"{ann_path}: image referenced but missing: {missing[0]}{more}")
    cats = [c for c in coco["categories"] if c.get("keypoints")]
    return CocoKeypointDataset(
        annotations_path=ann_path,
        images_dir=images_dir,
        coco=coco,
        category_id=int(cats[0]["id"]),
        image_ids=[int(im["id"]) for im in images],
        files=files,
        digest=digest,
        notes=notes,
    )


def _validate(coco: Any, path: Path) -> None:
    if not isinstance(coco, dict):
        raise DatasetError(f"{path}: expected a COCO object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DatasetError(f"{path}: key {key!r} missing or not a list")
    for im in coco["images"]:
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise DatasetError(f"{path}: every image needs 'id' and 'file_name'; got {im!r:.120}")
    ids = [im["id"] for im in coco["images"]]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: duplicate image ids")
    kp_cats = [c for c in coco["categories"] if isinstance(c, dict) and c.get("keypoints")]
    if not kp_cats:
        raise DatasetError(f"{path}: no category with a 'keypoints' list; not a keypoint dataset")
    known = set(ids)
    for ann in coco["annotations"]:
        if not isinstance(ann, dict) or ann.get("image_id") not in known:
            raise DatasetError(
                f"{path}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r} "
                "refers to an image id that is not in 'images'"
            )
        for key in ("id", "bbox", "category_id"):
            if key not in ann:
                raise DatasetError(f"{path}: annotation {ann.get('id')!r} has no {key!r}")


def _restrict(coco: dict, keep: set[int]) -> dict:
    out = dict(coco)
    out["images"] = [im for im in coco["images"] if im["id"] in keep]
    out["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    return out


# -- decoding -------------------------------------------------------------------------------------
class _DecodeImages:
    """A map-style torch dataset of uint8 CHW tensors; errors travel as strings."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return i, *decode_image(self.files[i])


def decode_image(path: Path):
    """-> (uint8 CHW RGB tensor, None) or (None, reason). Pillow decodes: torchvision.io's
    decoders are deprecated since torchvision 0.29."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        return None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous(), None


def _collate(batch):
    return batch


def iterate_batches(
    dataset: CocoKeypointDataset,
    batch_size: int,
    num_workers: int | None = None,
    pin_memory: bool = False,
):
    """Yield (indices, [uint8 CHW tensors]) in dataset order; decoding runs in worker processes."""
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise DatasetError(f"--kp-batch-size must be >= 1, got {batch_size}")
    if num_workers is None:
        num_workers = default_workers(len(dataset))
    loader = DataLoader(
        _DecodeImages(dataset.files),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers else None,
        persistent_workers=False,
    )
    for batch in loader:
        for i, _img, err in batch:
            if err is not None:
                raise DatasetError(f"{dataset.files[i]}: image undecodable: {err}")
        yield [b[0] for b in batch], [b[1] for b in batch]


def default_workers(n_images: int) -> int:
    if n_images < 8:
        return 0  # starting workers costs more than decoding a handful of images
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def load_images(dataset: CocoKeypointDataset, indices: list[int]) -> list:
    """Decode a few images in this process (for benchmarks and robustness samples)."""
    out = []
    for i in indices:
        img, err = decode_image(dataset.files[i])
        if err is not None:
            raise DatasetError(f"{dataset.files[i]}: image undecodable: {err}")
        out.append(img)
    return out
