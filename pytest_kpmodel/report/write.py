"""A finished run -> its report folder: what ``--kp-report=DIR`` writes at the session's end.

:func:`write_report` collects the artifacts from what the run computed (:func:`collect_artifacts`:
the gallery, backbone feature maps, stability renderings), adds the model card as the
``card`` section (:func:`card_section`), writes ``kp-report.json`` and renders ``index.html``
from that JSON as written. It asks the run only what it has computed (``session.computed``):
writing the report never makes the run do more.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data import load_images
from . import json_report
from .assets import add_file, artifact
from .feature_maps import render_feature_maps
from .gallery import render_gallery
from .html import write_html


def write_report(
    session: Any, folder: str | Path | None = None, *, gallery: int = 8, feature_maps: int = 2
) -> tuple[Path, Path]:
    """Everything ``--kp-report=DIR`` writes, for the plugin's session end: the artifacts
    (:func:`collect_artifacts`: gallery, feature maps, stability renderings) added to
    ``session.sections["artifacts"]``, the card as ``session.sections["card"]``, then
    ``kp-report.json`` and ``index.html`` rendered from that JSON as written (what
    ``kpmodel report DIR`` renders too). Returns both paths. Drawing never breaks the report:
    a part that fails is a note in the page."""
    folder = Path(folder if folder is not None else session.settings.report)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        found = collect_artifacts(session, folder, gallery=gallery, feature_maps=feature_maps)
    except Exception as exc:  # noqa: BLE001
        found = [artifact("other", "figures", None, {"error": f"{type(exc).__name__}: {exc}"})]
    previous = session.sections.get("artifacts")
    session.sections["artifacts"] = [*(previous if isinstance(previous, list) else []), *found]
    if "card" not in session.sections:
        with contextlib.suppress(Exception):  # a broken card is reported under "model"
            session.sections["card"] = card_section(session.card)
    json_path = json_report.write(json_report.build(session), folder)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    return json_path, write_html(report, folder)


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
    folder = Path(folder)
    out: list[dict[str, Any]] = []
    dataset = session.computed("dataset")
    preds = session.computed("predictions")
    if gallery and dataset is not None and preds is not None:
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
