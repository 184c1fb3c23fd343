"""False positives of the scanner on real checkpoints: every file here is benign, so every
non-clean verdict is a false positive.

    .venv/bin/python benchmarks/scan_false_positives.py [--max-params 60e6]
        [--d2-python /work/venvs/d2/bin/python] [--ul-python /work/venvs/ul-train/bin/python]

Written into a temporary folder, with random weights (nothing is downloaded):

* every torchvision builder (``torchvision.models.list_models()``: classification, detection,
  segmentation, video, optical flow; quantized backbones) up to ``--max-params`` parameters:
  its ``state_dict()`` with ``torch.save`` (zip), every third one also in the legacy format,
  a few as torchvision-reference training checkpoints (model, optimizer, lr_scheduler, args);
* the project's own models: the example suite's model folders (each scanned as a folder, with
  its card's allow-list profiles) and the Ultralytics fixtures of the tests;
* a detectron2-style model-zoo ``.pkl`` (a pickled dict of numpy arrays, protocols 2 and 4)
  and a detectron2 ``Checkpointer`` ``.pth`` ({"model": state_dict, "iteration": ...});
* with ``--d2-python`` (a Python where detectron2 is importable): a real keypoint R-CNN from
  detectron2's model zoo config, random-initialised and saved by ``DetectionCheckpointer``,
  and its weights as a model-zoo ``.pkl``;
* with ``--ul-python`` (a Python where ultralytics is importable): YOLOv8/11-pose checkpoints
  built from the package's yaml files and saved the way ``ultralytics`` saves them, scanned
  with the ``ultralytics`` profile.

Prints one line per file that is not clean, then the totals.
"""

from __future__ import annotations

import argparse
import inspect
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def torchvision_files(out: Path, max_params: float) -> list[tuple[Path, tuple[str, ...]]]:
    import argparse as ap

    import torch
    import torchvision

    files = []
    names = sorted(torchvision.models.list_models())
    for i, name in enumerate(names):
        builder = torchvision.models.get_model_builder(name)
        kwargs = {"weights": None}
        if "weights_backbone" in inspect.signature(builder).parameters:
            kwargs["weights_backbone"] = None  # never a download
        try:
            try:
                with torch.device("meta"):
                    n = sum(p.numel() for p in builder(**kwargs).parameters())
            except NotImplementedError:  # initialisers that copy data (RegNet): count on CPU
                n = 0 if any(s in name for s in ("16gf", "32gf", "128gf")) else -1
            if n > max_params or n == 0:
                continue
            torch.manual_seed(i)
            model = builder(**kwargs)
            if sum(p.numel() for p in model.parameters()) > max_params:
                continue
        except Exception as e:  # a builder that needs arguments we do not guess
            print(f"  (skipped {name}: {type(e).__name__}: {str(e)[:80]})")
            continue
        p = out / f"tv_{name}.pth"
        torch.save(model.state_dict(), p)
        files.append((p, ()))
        if i % 3 == 0:
            p = out / f"tv_{name}_legacy.pth"
            torch.save(model.state_dict(), p, _use_new_zipfile_serialization=False)
            files.append((p, ()))
        if name in (
            "resnet18",
            "mobilenet_v3_small",
            "keypointrcnn_resnet50_fpn",
            "fcos_resnet50_fpn",
        ):
            opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
            for q in model.parameters():
                opt.state[q]["momentum_buffer"] = torch.zeros_like(q)
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[16, 22])
            ckpt = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "lr_scheduler": sched.state_dict(),
                "epoch": 3,
                "args": ap.Namespace(model=name, lr=0.02, epochs=26, amp=False),
            }
            p = out / f"tv_{name}_checkpoint.pth"
            torch.save(ckpt, p)
            files.append((p, ()))
        del model
    for name in ("resnet18", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x1_0"):
        try:
            q = getattr(torchvision.models.quantization, name)(weights=None, quantize=True)
        except Exception as e:
            print(f"  (skipped quantized {name}: {type(e).__name__}: {str(e)[:80]})")
            continue
        p = out / f"tvq_{name}.pth"
        torch.save(q.state_dict(), p)
        files.append((p, ()))
    return files


def detectron2_style_files(out: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """The layouts of detectron2's files, written without detectron2."""
    import numpy as np
    import torch
    import torchvision

    m = torchvision.models.detection.keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    sd = m.state_dict()
    arrays = {k: v.numpy() for k, v in sd.items()}
    files = []
    for proto in (2, 4):
        p = out / f"d2style_model_final_p{proto}.pkl"
        obj = {"model": arrays, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}
        p.write_bytes(pickle.dumps(obj, protocol=proto))
        files.append((p, ()))
    p = out / "d2style_checkpointer.pth"
    torch.save({"model": sd, "iteration": 89999}, p)
    files.append((p, ()))
    p = out / "d2style_scalars.pkl"
    p.write_bytes(pickle.dumps({"model": {"w": np.float32(1.5), "b": np.zeros(3)}}, protocol=2))
    files.append((p, ()))
    return files


_D2 = textwrap.dedent(
    """
    import pickle, sys, torch
    from detectron2 import model_zoo
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    out = sys.argv[1]
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    torch.manual_seed(0)
    model = build_model(cfg)
    DetectionCheckpointer(model, save_dir=out).save("model_final", iteration=89999)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    with open(out + "/model_final_zoo.pkl", "wb") as f:
        pickle.dump({"model": sd, "__author__": "Detectron2 Model Zoo",
                     "matching_heuristics": True}, f)
    """
)

_UL = textwrap.dedent(
    """
    import sys
    from copy import deepcopy
    from datetime import datetime
    import torch
    from ultralytics import YOLO
    out = sys.argv[1]
    for cfg in ("yolov8n-pose.yaml", "yolo11n-pose.yaml"):
        model = YOLO(cfg).model
        ckpt = {"epoch": -1, "best_fitness": None, "model": deepcopy(model).half(), "ema": None,
                "updates": None, "optimizer": None, "train_args": {}, "train_metrics": {},
                "date": datetime.now().isoformat(), "version": "8.4"}
        torch.save(ckpt, f"{out}/{cfg.replace('.yaml', '')}.pt")
    """
)


def external(python: str, script: str, out: Path, prefix: str) -> list[Path]:
    before = set(out.iterdir())
    r = subprocess.run(
        [python, "-c", script, str(out)], capture_output=True, text=True, timeout=1800
    )
    if r.returncode:
        print(f"  ({prefix} failed: {r.stderr.strip().splitlines()[-1:]})")
    return sorted(set(out.iterdir()) - before)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-params", type=float, default=60e6)
    ap.add_argument("--d2-python", help="a Python where detectron2 is importable")
    ap.add_argument("--ul-python", help="a Python where ultralytics is importable")
    args = ap.parse_args()

    from pytest_kpmodel.security import scan_path
    from pytest_kpmodel.security.scan import scan_folder

    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        files = torchvision_files(out, args.max_params) + detectron2_style_files(out)
        # model folders: scanned as folders (a checkpointer's text files are inert there)
        folders: list[tuple[Path, tuple[str, ...]]] = []
        if args.d2_python:
            d2 = out / "d2"
            d2.mkdir()
            if external(args.d2_python, _D2, d2, "detectron2"):
                folders.append((d2, ()))
        if args.ul_python:
            ul = out / "ul"
            ul.mkdir()
            if external(args.ul_python, _UL, ul, "ultralytics"):
                folders.append((ul, ("ultralytics",)))
        fixtures = ROOT / "tests" / "adapters" / "ultralytics" / "data"
        files += [(p, ("ultralytics",)) for p in sorted(fixtures.glob("*.pt"))]
        for card in sorted((ROOT / "example_suite" / "models").glob("*/kpmodel.toml")):
            text = card.read_text()
            folders.append((card.parent, ("ultralytics",) if "ultralytics" in text else ()))
        built = time.perf_counter() - t0
        for path, profiles in files:
            reports.append(("file", scan_path(path, allowlists=profiles)))
        for folder, profiles in folders:
            reports += [("folder", r) for r in scan_folder(folder, allowlists=profiles)]
        size = sum(os.path.getsize(r.path) for _, r in reports if os.path.exists(r.path))
        bad = [(w, r) for w, r in reports if not r.ok]
        for _w, r in bad:
            print(f"FALSE POSITIVE {r.path}: {r.verdict} ({r.kind})")
            for f in r.failures[:3]:
                print(f"    {f.message[:200]}")
        kinds: dict[str, int] = {}
        for _, r in reports:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        print(
            f"\n{len(reports)} files ({size / 1e9:.2f} GB; built in {built:.0f} s): "
            f"{len(reports) - len(bad)} clean, {len(bad)} false positives"
        )
        print("by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
