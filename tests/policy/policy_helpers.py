"""Fake installed distributions and cards for the policy tests (imported by the test files)."""

from __future__ import annotations

from pathlib import Path


def write_dist(
    site: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] = (),
    license_expression: str | None = None,
    license: str | None = None,
    classifiers: tuple[str, ...] = (),
) -> Path:
    """A ``name-version.dist-info/METADATA`` that importlib.metadata reads like an installed one."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}"]
    if license_expression is not None:
        lines.append(f"License-Expression: {license_expression}")
    if license is not None:
        body = license.replace("\n", "\n        ")  # RFC 822 continuation lines
        lines.append(f"License: {body}")
    lines += [f"Classifier: {c}" for c in classifiers]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return info


def write_policy_card(folder: Path, extra: str = "", weights: bytes | None = None) -> Path:
    """A minimal card (python format, or safetensors with a dummy weights file)."""
    folder.mkdir(parents=True, exist_ok=True)
    if weights is None:
        model = 'format = "python"\narchitecture = "pkg.mod:factory"\n'
    else:
        (folder / "w.safetensors").write_bytes(weights)
        model = (
            'format = "safetensors"\nweights = "w.safetensors"\n'
            'architecture = "torchvision:keypointrcnn_resnet50_fpn"\n'
        )
    text = f'schema = 1\n[model]\nname = "kp-policy"\nversion = "1.0.0"\n{model}\n{extra}\n'
    path = folder / "kpmodel.toml"
    path.write_text(text, encoding="utf-8")
    return path
