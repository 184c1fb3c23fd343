"""The files of a scaffolded spec: one test file per concern (as in ``example_suite/``) and a
``pytest.ini``. Every number is the first run's measurement moved by the margin, rounded so that
the spec passes on the model it was measured on, with a comment saying where it came from."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..card import ModelCard
from .measure import BENCH, FirstRun

FILES = ("pytest.ini", "test_provenance.py", "test_license.py", "test_dependencies.py",
         "test_security.py", "test_accuracy.py", "test_speed.py", "test_robustness.py")  # fmt: skip
CODE_FORMATS = ("python", "torchscript", "exported")
NO_PICKLE_FORMATS = ("safetensors", "onnx")
LABELS = {"box_ap": "box AP", "box_ap50": "box AP50", "kp_ap": "keypoint AP",
          "kp_ap50": "keypoint AP50"}  # fmt: skip


@dataclass(frozen=True)
class Margins:
    accuracy: float = 0.02  # absolute AP below the measurement
    speed: float = 0.5  # relative: FPS may fall by this share, latency/VRAM grow by it

    def __post_init__(self) -> None:
        if not 0 <= self.accuracy < 1:
            raise ValueError(f"--margin must be in [0, 1), got {self.accuracy}")
        if not 0 <= self.speed < 1:
            raise ValueError(f"--speed-margin must be in [0, 1), got {self.speed}")


def floor3(x: float) -> float:
    return max(0.0, math.floor(x * 1000 + 1e-9) / 1000)


def ceil1(x: float) -> float:
    return math.ceil(x * 10 - 1e-9) / 10


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _source_pattern(source: str | None) -> str | None:
    """``https://host/path/x`` -> ``https://host/*``: the vendor's host, any path."""
    if not source:
        return None
    m = re.match(r"^([a-z][a-z0-9+.-]*://[^/]+)", source)
    return f"{m.group(1)}/*" if m else None


class SpecWriter:
    """Renders the files for ``card`` in ``folder`` from ``run``."""

    def __init__(self, card: ModelCard, run: FirstRun, folder: Path, margins: Margins,
                 trusted_key: Path | None = None, dataset: Path | None = None,
                 max_images: int | None = None) -> None:  # fmt: skip
        self.card, self.run, self.folder, self.m = card, run, folder, margins
        self.trusted_key, self.dataset, self.max_images = trusted_key, dataset, max_images
        self.when = date.today().isoformat()

    def measured(self, what: str) -> str:
        what = f" {what}" if what else ""
        return f"measured{what} by `kpmodel init` on {self.when} ({self.run.where()})"

    def files(self) -> dict[str, str]:
        render = {
            "pytest.ini": self.ini,
            "test_provenance.py": self.provenance,
            "test_license.py": self.license,
            "test_dependencies.py": self.dependencies,
            "test_security.py": self.security,
            "test_accuracy.py": self.accuracy,
            "test_speed.py": self.speed,
            "test_robustness.py": self.robustness,
        }
        return {name: render[name]() for name in FILES}

    # -- pytest.ini -----------------------------------------------------------------------------
    def ini(self) -> str:
        lines = [
            f"# Acceptance spec for {self.run.model}, scaffolded by `kpmodel init` on {self.when}.",
            "# Paths are relative to this file. Run: pytest <this folder>",
            "[pytest]",
            "addopts = --strict-markers",
            f"kp_model = {_rel(self.card.path, self.folder)}",
        ]
        if self.dataset is not None:
            lines.append(f"kp_dataset = {_rel(self.dataset, self.folder)}")
        if self.max_images is not None:
            # as measured (an ini value cannot carry a trailing comment: it would be read in)
            lines += [
                "# the first run's subset of the evaluation set",
                f"kp_max_images = {self.max_images}",
            ]
        if self.card.model.format in CODE_FORMATS:
            lines.append(f"# format {self.card.model.format!r} runs the vendor's code:")
            lines.append("kp_allow_code = true")
        lines += [
            "# A CPU runner skips GPU checks; name the checks that must run (their skips then",
            "# fail), e.g. on the GPU job: kp_require = gpu,fp16,vram,signature",
        ]
        return "\n".join(lines) + "\n"

    # -- one file per concern -------------------------------------------------------------------
    def provenance(self) -> str:
        card, out = self.card, ['"""Is this the file the vendor published, unaltered, from a '
                                'source we trust?"""', ""]  # fmt: skip
        if self.trusted_key is not None:
            out += ["from pathlib import Path", ""]
        out += ["import pytest", ""]
        args = ["sha256=True"]
        if self.trusted_key is not None:
            out += [
                "# The vendor's public key, given to `kpmodel init --trusted-key`.",
                f'VENDOR_KEY = Path(__file__).parent / "{_rel(self.trusted_key, self.folder)}"',
                "",
            ]
            args += ["signature=True", "trusted_keys=[VENDOR_KEY]"]
        else:
            why = (
                f"the card names a signature ({card.provenance.signature.name})"
                if card.provenance.signature
                else "the card names no signature"
            )
            out.append(
                f"# signature=False: {why} and `kpmodel init` got no --trusted-key; "
                "--kp-require=signature fails the run until it is verified."
            )
            args.append("signature=False")
        pattern = _source_pattern(card.provenance.source)
        if pattern:
            out.append(
                f"# sources: the host of the card's provenance.source {card.provenance.source}"
            )
            args.append(f"sources=[{pattern!r}]")
        out += [
            f"@pytest.mark.kp_provenance({', '.join(args)})",
            "def test_unaltered_from_the_vendor():",
            "    pass",
        ]
        if card.provenance.base is not None:
            out += [
                "",
                "",
                "def test_changes_against_base_are_declared(kp_diff):",
                "    print(kp_diff.render())",
                '    undeclared = [f.message for f in kp_diff.findings() if f.severity != "info"]',
                "    assert not undeclared, undeclared",
            ]
        return "\n".join(out) + "\n"

    def license(self) -> str:
        spdx = self.card.license.spdx or "no license"
        return (
            '"""May we ship a product with this model?"""\n\nimport pytest\n\n'
            f"# The card declares {spdx}. copyleft=False refuses any copyleft (weak too);\n"
            "# commercial=False refuses LicenseRef-/proprietary terms.\n"
            "@pytest.mark.kp_license(copyleft=False, commercial=False)\n"
            "def test_model_license():\n    pass\n"
        )

    def dependencies(self) -> str:
        r = self.run
        return (
            '"""Will the model run on our stack?"""\n\nimport pytest\n\n\n'
            "@pytest.mark.kp_dependencies  # the card's own [dependencies] against this machine\n"
            "def test_runs_here():\n    pass\n\n\n"
            f"# The stack the first run used: Python {r.python} on {r.os} ({r.machine}), "
            f"{self.when}.\n"
            f'@pytest.mark.kp_dependencies(python=">={r.python}", os=[{r.os!r}])\n'
            "def test_fits_our_stack():\n    pass\n"
        )

    def security(self) -> str:
        fmt = self.card.model.format
        pickle = "none" if fmt in NO_PICKLE_FORMATS else "strict"
        code = fmt in CODE_FORMATS
        why_pickle = (
            f"format {fmt!r} needs no pickle: any pickle in the folder fails"
            if pickle == "none"
            else f"format {fmt!r} is pickle-based: only allow-listed globals pass"
        )
        why_code = (
            f"code=True: format {fmt!r} runs the vendor's code (reviewed by you)"
            if code
            else "code=False: no vendor code runs"
        )
        return (
            '"""Is loading or running it safe?"""\n\nimport pytest\n\n\n'
            f"# pickle={pickle!r}: {why_pickle}; {why_code}.\n"
            f"@pytest.mark.kp_security(pickle={pickle!r}, network=False, subprocess=False, "
            f"writes=False, code={code})\n"
            "def test_safe_to_load_and_run():\n    pass\n\n\n"
            "def test_weights_scan_clean(kp_scan):\n"
            '    assert kp_scan.verdict == "clean", kp_scan.findings\n'
        )

    def accuracy(self) -> str:
        r, m = self.run, self.m.accuracy
        out = ['"""Is it accurate enough, as claimed, and no worse than its base?"""', "",
               "import pytest", ""]  # fmt: skip
        out.append(f"# {self.measured('on the evaluation set')}, minus --margin {m}:")
        names = []
        for name, value in r.accuracy.items():
            bound = floor3(value - m)
            const = name.upper()
            out.append(f"{const} = {bound:.3f}  # {LABELS[name]} {value:.3f} - {m}")
            names.append(f"{name}={const}")
        out += [
            "",
            "",
            f"@pytest.mark.kp_thresholds({', '.join(names)})",
            "def test_accuracy_gates():",
            "    pass",
        ]
        if self.card.claims:
            out += [
                "",
                "",
                f"# The card's [claims] ({', '.join(sorted(self.card.claims))}), within --margin.",
                f"@pytest.mark.kp_claims(tolerance={self._claims_tolerance()})",
                "def test_vendor_claims_hold():",
                "    pass",
            ]
        if r.baseline:
            out += ["", "", *self._no_regression()]
        elif "baseline" in r.unmeasured:
            out += [
                "",
                f"# no kp_no_regression: the baseline did not run ({r.unmeasured['baseline']})",
            ]
        return "\n".join(out) + "\n"

    def _claims_tolerance(self) -> float:
        """--margin, widened to what the first run missed a claim by (the spec must pass on the
        model it was measured on; the comment above says how far off the vendor was)."""
        missed = [
            claimed - self.run.accuracy[k]
            for k, claimed in self.card.claims.items()
            if k in self.run.accuracy
        ]
        return round(max([self.m.accuracy, *(x + 0.001 for x in missed)]), 3)

    def _no_regression(self) -> list[str]:
        r, m = self.run, self.m.accuracy
        out, args = [f"# Against {r.baseline_model} (the card's provenance.base), same data:"], []
        for name in ("box_ap", "kp_ap"):
            if name not in r.accuracy or name not in r.baseline:
                continue
            loss = r.baseline[name] - r.accuracy[name]
            tol = max(m, math.ceil((loss + m) * 1000) / 1000) if loss > 0 else m
            note = (
                f"it loses {loss:.3f} {LABELS[name]} to its base on the first run: the tolerance "
                f"is that loss + --margin {m}; decide whether you accept it"
                if loss > 0
                else f"{LABELS[name]} {r.accuracy[name]:.3f} vs base {r.baseline[name]:.3f}"
            )
            out.append(f"# {name}: {note}")
            args.append(f"{name}={tol:.3f}")
        out += [
            f"@pytest.mark.kp_no_regression({', '.join(args)}, fps=None)",
            "def test_no_worse_than_base():",
            "    pass",
        ]
        return out

    def speed(self) -> str:
        r, sm = self.run, self.m.speed
        out = ['"""Is it fast and small enough? (Timed with the settings below.)"""', "",
               "import pytest", "", f"BENCH = {BENCH!r}"]  # fmt: skip
        if not r.speed:
            reason = r.unmeasured.get("speed", "not measured")
            out += ["", f"# No speed gate: the first run could not time the model ({reason}).",
                    "", "", "@pytest.mark.kp_bench(**BENCH)",
                    "def test_latency_profile(kp_bench):", "    print(kp_bench().describe())"]  # fmt: skip
            return "\n".join(out) + "\n"
        fps = r.speed["fps"]
        p50, p90 = r.speed["latency_p50_ms"], r.speed["latency_p90_ms"]
        out += [
            f"# {self.measured(r.speed_setting)}; --speed-margin {sm}: FPS may fall by that share,",
            "# latency may grow by it (CI machines vary; a tighter margin needs a quiet machine).",
            f"FPS = {floor3(fps * (1 - sm)):.3f}  # measured {fps:.2f} x (1 - {sm})",
            f"LATENCY_P50_MS = {ceil1(p50 * (1 + sm)):.1f}  # measured {p50:.2f} x (1 + {sm})",
            f"LATENCY_P90_MS = {ceil1(p90 * (1 + sm)):.1f}  # measured {p90:.2f} x (1 + {sm})",
            "",
            "",
            "@pytest.mark.kp_bench(**BENCH)",
            "@pytest.mark.kp_thresholds(fps=FPS, latency_p50_ms=LATENCY_P50_MS, "
            "latency_p90_ms=LATENCY_P90_MS)",
            "def test_fast_enough():",
            "    pass",
        ]
        if "vram_mib" in r.speed:
            v = r.speed["vram_mib"]
            out += [
                "",
                "",
                f"VRAM_MIB = {ceil1(v * (1 + sm)):.1f}  # peak measured {v:.1f} MiB x (1 + {sm})",
                "@pytest.mark.kp_bench(**BENCH)",
                "@pytest.mark.kp_thresholds(vram_mib=VRAM_MIB)",
                "def test_fits_in_gpu_memory():",
                "    pass",
            ]
        else:
            out += ["", f"# No VRAM gate: {r.unmeasured.get('vram_mib', 'not measured')} on the "
                    "first run; run `kpmodel init` on the GPU to add one."]  # fmt: skip
        return "\n".join(out) + "\n"

    def robustness(self) -> str:
        r, m = self.run, self.m.accuracy
        out = ['"""Does it hold up under a mirror image (left and right keypoints swapped)?"""',
               ""]  # fmt: skip
        if r.flip_failed:  # a test here would only repeat the model's error
            out += [f"# No flip test: {r.unmeasured['flip']}."]
            return "\n".join(out) + "\n"
        if r.flip_oks is None:
            out += [f"# No flip gate: {r.unmeasured.get('flip', 'not measured')}.", "", "",
                    "def test_flip_consistency_profile(kp_flip_consistency):",
                    "    print(kp_flip_consistency.to_json())"]  # fmt: skip
            return "\n".join(out) + "\n"
        out += [
            f"# Mean OKS of predictions on mirrored images mapped back, {self.measured('')},",
            f"# minus --margin {m}.",
            f"FLIP_OKS = {floor3(r.flip_oks - m):.3f}  # measured {r.flip_oks:.3f} - {m}",
            "",
            "",
            "def test_flip_consistency(kp_flip_consistency):",
            "    assert kp_flip_consistency.mean_oks >= FLIP_OKS, kp_flip_consistency.to_json()",
        ]
        return "\n".join(out) + "\n"
