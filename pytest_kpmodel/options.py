"""The plugin's command-line options and ini keys: one table, and what turns a raw value into
a setting.

Each option is also an ini key of the same name (``--kp-model`` / ``kp_model``); the command line
wins. plugin.py registers them with pytest and reads them; the conversions live here so they are
plain functions (no pytest), tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KpModelError, did_you_mean


class OptionError(KpModelError):
    """A value that is not a valid setting; plugin.py reports it as pytest's usage error."""


@dataclass(frozen=True)
class Opt:
    dest: str  # also the ini key
    help: str
    kind: str = "str"  # str | path | int | float | bool | choice
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")


OPTIONS = (
    Opt("kp_model", "model card (kpmodel.toml, or its folder) under test; without it every "
         "kp_* test is skipped", "path", metavar="PATH"),
    Opt("kp_dataset", "COCO keypoint annotation file to evaluate on (default: the card's "
         "[dataset])", "path", metavar="PATH"),
    Opt("kp_images", "folder of the --kp-dataset images (default: images/ beside the "
         "annotations, else their folder)", "path", metavar="DIR"),
    Opt("kp_device", "cpu, cuda or cuda:N (default: cuda when available)", metavar="DEVICE"),
    Opt("kp_baseline", "a second card to compare against (default: the card's "
         "provenance.base)", "path", metavar="PATH"),
    Opt("kp_report", "write kp-report.json and index.html into DIR", "path", metavar="DIR"),
    Opt("kp_max_images", "evaluate on the first N images only", "int", metavar="N"),
    Opt("kp_batch_size", "images per inference batch (default 1)", "int", 1, metavar="N"),
    Opt("kp_precision", "inference precision (default fp32)", "choice", "fp32",
         ("fp32", "fp16", "bf16")),
    Opt("kp_allow_code", "permit formats that run the model's own code (python, torchscript)",
         "bool", False),
    Opt("kp_no_cache", "recompute predictions instead of reusing the on-disk cache", "bool",
         False),
    Opt("kp_metrics_engine", "COCO evaluation backend: auto, pycocotools, faster-coco-eval or "
         "hotcoco (default auto: the fastest installed exact one)", "str", "auto", metavar="NAME"),
    Opt("kp_osv_db", "a local OSV export (PyPI zip or folder of JSON) for the vulnerability "
         "check", "path", metavar="PATH"),
    Opt("kp_sbom", "write a CycloneDX SBOM of the environment and the model to FILE", "path",
         metavar="FILE"),
    Opt("kp_seed", "seed for sampling, perturbations and bootstrap (default 0)", "int", 0,
         metavar="N"),
    Opt("kp_workers", "image-decoding worker processes (default: by CPU count)", "int",
         metavar="N"),
    Opt("kp_allow_box_area", "accept a --kp-dataset whose every 'area' is its box w*h "
         "(OCHuman); OKS is then more lenient than with COCO's segment areas (card: [dataset] "
         "allow_box_area)", "bool", False),
    Opt("kp_area_from_box", "give annotations without 'area' F * box w*h (CrowdPose's "
         "evaluation: 0.53; card: [dataset] area_from_box)", "float", metavar="F"),
    Opt("kp_summary", "write the verdict (gate table, findings, checks that did not run) as "
         "GitHub-flavoured Markdown to FILE, e.g. $GITHUB_STEP_SUMMARY", "path", metavar="FILE"),
    Opt("kp_require", "checks that must run, comma-separated (e.g. gpu,fp16,vram,signature): "
         "their skips fail with the reason, and a run in which none evaluated one fails; an "
         "unknown name lists the valid ones", "names", frozenset(), metavar="NAMES"),
)  # fmt: skip


def convert(opt: Opt, value: Any, *, from_ini: bool, base: Path) -> Any:
    """``value`` as read from the command line or the ini file -> the setting; ini and command
    line paths are relative to ``base`` (the ini file's folder or the invocation folder)."""
    if opt.kind == "bool":
        return bool(value)
    if opt.kind == "names":
        from .required import parse

        return parse(value, opt.dest if from_ini else opt.flag)
    if opt.kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise OptionError(f"{opt.flag}: expected an integer, got {value!r}") from None
    if opt.kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"{opt.flag}: expected a number, got {value!r}") from None
        if not 0 < number <= 1:
            raise OptionError(f"{opt.flag}: must be in (0, 1], got {value!r}")
        return number
    if opt.kind == "choice" and value not in opt.choices:
        raise OptionError(f"{opt.flag}: {value!r} is not one of {', '.join(opt.choices)}")
    if opt.kind == "path":
        return (base / Path(str(value)).expanduser()).resolve()
    return value


def check_ini_keys(present: Iterable[str], where: str) -> None:
    """A ``kp_*`` ini key this plugin does not know stops the run, naming its likely fix
    (pytest itself only warns, and a typo must not silently drop a setting)."""
    known = [opt.dest for opt in OPTIONS]
    for key in sorted(k for k in present if k.startswith("kp") and k not in known):
        raise OptionError(
            f"{where}: {key}: unknown pytest-kpmodel ini key; {did_you_mean(key, known)}"
            f"allowed: {', '.join(known)}"
        )


def by_dest() -> Mapping[str, Opt]:
    return {opt.dest: opt for opt in OPTIONS}
