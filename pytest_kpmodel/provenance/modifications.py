"""Do the card's ``[provenance] modifications`` mention what the diff found changed?

Module path words (``roi_heads.keypoint_head`` -> "keypoint", "head") are looked for in the
modification text; generic words such as head/body/layer/conv alone do not count, and a few
abbreviations are expanded (kps -> keypoint, fpn -> "feature pyramid", rpn -> "region proposal").
Unmentioned added/removed/reshaped tensors give a ``warn`` finding per component; unmentioned
weight-only changes an ``info`` finding, unless a modification speaks of training in general
("trained", "fine-tuned", ...), which covers them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..findings import Finding

if TYPE_CHECKING:
    from .diff import LayerChange, ModelDiff

GENERIC_WORDS = frozenset(
    [
        "body",
        "module",
        "model",
        "head",
        "heads",
        "layer",
        "layers",
        "block",
        "blocks",
        "features",
        "feature",
        "conv",
        "convs",
        "weight",
        "bias",
        "bn",
        "norm",
        "fc",
        "roi",
        "predictor",
        "stage",
        "stages",
        "branch",
        "net",
        "trunk",
    ]
)
ALIASES = {
    "kps": ("keypoint",),
    "kp": ("keypoint",),
    "fpn": ("fpn", "feature pyramid"),
    "rpn": ("rpn", "region proposal"),
    "bbox": ("box",),
    "cls": ("class", "classifier", "cls"),
}
TRAINING_WORDS = ("train", "fine-tun", "finetun", "fine tun", "retrain", "re-train", "distil")


def component(name: str) -> str:
    """``roi_heads.keypoint_head.0.weight``'s layer -> ``roi_heads.keypoint_head``."""
    parts = name.split(".")
    if len(parts) >= 2 and not parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0]


def _segment_words(segment: str) -> list[str]:
    words = []
    for w in re.findall(r"[a-z]+", segment.lower()):
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        words.append(w)
    return words


def _mentions(text_tokens: list[str], text: str, word: str) -> bool:
    options = ALIASES.get(word, (word,))
    for opt in options:
        if " " in opt:
            if opt in text:
                return True
        elif any(tok.startswith(opt) for tok in text_tokens):
            return True
    return False


def is_mentioned(name: str, modifications: tuple[str, ...] | list[str]) -> bool:
    """Does any modification text name a part of ``name``'s module path (non-generic words)?"""
    text = " ".join(modifications).lower().replace("_", " ").replace("-", " ")
    tokens = re.findall(r"[a-z0-9]+", text)
    for segment in name.split(".")[:-1] or [name]:
        words = [w for w in _segment_words(segment) if w not in GENERIC_WORDS]
        if words and all(_mentions(tokens, text, w) for w in words):
            return True
    return False


def modification_findings(d: ModelDiff) -> list[Finding]:
    mods = tuple(d.model.card.provenance.modifications)
    structural = [t for t in d.tensors if t.status in ("added", "removed", "reshaped")]
    weight_only = [layer for layer in d.layers if layer.status == "changed"]
    findings: list[Finding] = []
    if not mods and (structural or weight_only):
        findings.append(
            Finding(
                "diff.modifications",
                f"{d.model.card.path} lists no [provenance] modifications, but against the base "
                f"{len(structural)} tensors were added, removed or reshaped and "
                f"{len(weight_only)} layers changed weights",
                "warn",
                {"structural": len(structural), "changed_layers": len(weight_only)},
            )
        )
        return findings
    groups: dict[str, dict[str, int]] = {}
    for t in structural:
        if not is_mentioned(t.name, mods):
            g = groups.setdefault(component(t.layer), {"added": 0, "removed": 0, "reshaped": 0})
            g[t.status] += 1
    for comp, counts in groups.items():
        what = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        findings.append(
            Finding(
                "diff.modifications",
                f"unmentioned change: {comp}: tensors {what}; [provenance] modifications do not "
                "mention it",
                "warn",
                {"component": comp, **counts},
            )
        )
    text = " ".join(mods).lower()
    if any(w in text for w in TRAINING_WORDS):
        return findings
    changed: dict[str, list[LayerChange]] = {}
    for layer in weight_only:
        if not is_mentioned(layer.name + ".x", mods):
            changed.setdefault(component(layer.name), []).append(layer)
    for comp, layers in changed.items():
        worst = max((x.rel_change or 0.0) for x in layers)
        findings.append(
            Finding(
                "diff.modifications",
                f"unmentioned change: {comp}: weights of {len(layers)} layer(s) changed (max "
                f"rel. change {worst:.3g}); [provenance] modifications do not mention it",
                "info",
                {"component": comp, "layers": len(layers), "max_rel_change": worst},
            )
        )
    return findings
