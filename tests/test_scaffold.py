"""``kpmodel init``: a spec folder from a measured first run, that passes on the model it was
measured on, fails on a worse one, says where each threshold came from, never overwrites."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from kp_factories import make_model, make_oracle
from pytest_kpmodel.card import load_card
from pytest_kpmodel.cli import main
from pytest_kpmodel.scaffold.measure import FirstRun
from pytest_kpmodel.scaffold.spec_files import FILES, Margins, SpecWriter

PROVENANCE = (
    '[provenance]\nsource = "https://models.example.org/tiny/0.1"\nbase = "../base/kpmodel.toml"\n'
    'modifications = ["retrained from another seed"]\n[license]\nspdx = "Apache-2.0"\n'
)


def _pytest(spec: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(spec), "-p", "no:randomly", "-rA", *args],
        cwd=spec.parent, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_scaffolded_spec_passes_on_its_model(tmp_path, tiny_dataset, capsys):
    make_model(tmp_path / "base", seed=1, dataset=tiny_dataset, name="tiny-base")
    card = make_model(tmp_path / "mod", dataset=tiny_dataset, extra=PROVENANCE)
    spec = tmp_path / "specs"
    assert main(["init", str(card), str(spec), "--margin", "0.05", "--no-speed"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wrote 8 files to .*specs in [0-9.]+ s", out), out
    assert sorted(p.name for p in spec.iterdir() if p.is_file()) == sorted(FILES)
    accuracy = (spec / "test_accuracy.py").read_text()
    # every threshold line says what was measured and the margin taken off
    for const in ("BOX_AP", "BOX_AP50", "KP_AP", "KP_AP50"):
        line = next(x for x in accuracy.splitlines() if x.startswith(f"{const} = "))
        assert re.fullmatch(rf"{const} = \d\.\d{{3}}  # .* \d\.\d{{3}} - 0\.05", line), line
    assert "by `kpmodel init` on" in accuracy and "tiny 0.1 sha256:" in accuracy
    assert "kp_no_regression(" in accuracy and "tiny-base" in accuracy
    ini = (spec / "pytest.ini").read_text()
    assert "kp_model = ../mod/kpmodel.toml" in ini
    assert "sources=['https://models.example.org/*']" in (spec / "test_provenance.py").read_text()
    security = (spec / "test_security.py").read_text()
    assert "pickle='none'" in security and "code=False" in security
    result = _pytest(spec)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " failed" not in result.stdout.splitlines()[-1]


def test_init_refuses_to_overwrite_and_names_the_file(tmp_path, tiny_card, capsys):
    spec = tmp_path / "specs"
    spec.mkdir()
    (spec / "test_accuracy.py").write_text("# ours\n")
    assert main(["init", str(tiny_card), str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec / 'test_accuracy.py'} already exist(s); kpmodel init never overwrites" in err
    assert (spec / "test_accuracy.py").read_text() == "# ours\n"
    assert sorted(p.name for p in spec.iterdir()) == ["test_accuracy.py"]  # nothing else written


def test_thresholds_follow_the_measurement(tmp_path, tiny_dataset, capsys):
    """The oracle's AP is 1: thresholds 1 - margin; the spec passes on it and fails on a model
    whose keypoints are shifted."""
    card = make_oracle(tmp_path / "oracle", tiny_dataset)
    spec = tmp_path / "specs"
    args = ["init", str(card), str(spec), "--margin", "0.1", "--no-speed", "--allow-code"]
    assert main(args) == 0
    capsys.readouterr()
    accuracy = (spec / "test_accuracy.py").read_text()
    assert "KP_AP = 0.900  # keypoint AP 1.000 - 0.1" in accuracy
    assert "BOX_AP = 0.900  # box AP 1.000 - 0.1" in accuracy
    ini = (spec / "pytest.ini").read_text()
    assert "kp_allow_code = true" in ini
    assert "code=True" in (spec / "test_security.py").read_text()
    ok = _pytest(spec, "-k", "accuracy")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    shifted = make_oracle(tmp_path / "shifted", tiny_dataset, shift=6.0)
    bad = _pytest(spec, "-k", "accuracy", f"--kp-model={shifted}")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "kp_thresholds: keypoints AP" in bad.stdout


def _run(**overrides) -> FirstRun:
    values = dict(model="tiny 0.1", sha256="ab" * 32, device="cpu", images=3,
                  dataset="data/annotations.json", engine_note="hotcoco 1.3.0",
                  accuracy={"box_ap": 0.6344, "kp_ap": 0.3321})  # fmt: skip
    return FirstRun(**{**values, **overrides})


def test_speed_gates_from_the_measurement(tiny_card, tmp_path):
    run = _run(speed={"fps": 21.13, "latency_p50_ms": 47.52, "latency_p90_ms": 60.01},
               speed_setting="batch 1, fp32, cpu", unmeasured={"vram_mib": "no VRAM on cpu"})  # fmt: skip
    writer = SpecWriter(load_card(tiny_card), run, tmp_path, Margins(0.02, 0.5))
    speed = writer.files()["test_speed.py"]
    assert "FPS = 10.565  # measured 21.13 x (1 - 0.5)" in speed
    assert "LATENCY_P50_MS = 71.3  # measured 47.52 x (1 + 0.5)" in speed
    assert "LATENCY_P90_MS = 90.1  # measured 60.01 x (1 + 0.5)" in speed
    assert "No VRAM gate: no VRAM on cpu on the first run" in speed
    accuracy = writer.files()["test_accuracy.py"]
    assert "BOX_AP = 0.614  # box AP 0.634 - 0.02" in accuracy  # floored: passes on 0.6344
    gpu = _run(speed={"fps": 100.0, "latency_p50_ms": 10.0, "latency_p90_ms": 12.0,
                      "vram_mib": 812.4}, speed_setting="batch 1, fp32, cuda")  # fmt: skip
    speed = SpecWriter(load_card(tiny_card), gpu, tmp_path, Margins()).files()["test_speed.py"]
    assert "VRAM_MIB = 1218.6  # peak measured 812.4 MiB x (1 + 0.5)" in speed
    assert "@pytest.mark.kp_thresholds(vram_mib=VRAM_MIB)" in speed
    subset = SpecWriter(load_card(tiny_card), gpu, tmp_path, Margins(), max_images=40)
    ini = subset.files()["pytest.ini"].splitlines()
    assert "kp_max_images = 40" in ini  # whole: pytest's ini reads a trailing comment as value
    assert not [line for line in ini if " #" in line and not line.startswith("#")]
    for text in SpecWriter(load_card(tiny_card), gpu, tmp_path, Margins()).files().values():
        if text.startswith('"""'):
            compile(text, "spec", "exec")  # every test file is Python
