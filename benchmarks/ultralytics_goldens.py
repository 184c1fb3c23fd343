"""Write the CI fixtures of the ``ultralytics`` format: tiny checkpoints that Ultralytics itself
saved, its ONNX exports, and its predictions on three small images.

    /path/to/venv-with-ultralytics/bin/python benchmarks/ultralytics_goldens.py \
        [--out tests/adapters/ultralytics/data]

Exits 2 without ``ultralytics`` (AGPL-3.0; never a plugin dependency). For YOLOv8 and YOLO11
pose, a model is built from the package's yaml with the ``n`` scale replaced by
``[0.33, 0.125, 256]`` (a few hundred thousand parameters), seeded, given batch-norm statistics
from real images and class biases so that a few dozen anchors pass conf=0.001, and saved the way
the trainer does (``strip_optimizer``: fp16). Then, at imgsz 96, with conf 0.001, iou 0.7,
max_det 300 and ``channels_last=False`` (the plugin computes in NCHW; see
``ultralytics_parity.py``): ``model.predict`` (letterbox ``predict``), ``model.val`` with its
predictions captured (letterbox ``val``; the images are background images, no labels), and
``YOLO(onnx).predict`` on the ONNX export (letterbox ``square``). ``<name>.json`` holds them;
the tests compare the plugin with them without ultralytics installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ultralytics_common as uc  # noqa: E402

TINY_SCALE = [0.33, 0.125, 256]
IMGSZ = 96
SIZES = {
    "landscape_96x72.png": (72, 96),
    "portrait_64x100.png": (100, 64),
    "wide_150x60.png": (60, 150),
}
NMS = {"conf": 0.001, "iou": 0.7, "max_det": 300}


def rounded(preds: dict[str, dict]) -> dict[str, dict]:
    """Boxes to 1e-5 px, keypoints and scores to 1e-6: below the tests' tolerances, half the size."""

    def r(v, digits):
        return [r(x, digits) for x in v] if isinstance(v, list) else round(float(v), digits)

    return {
        name: {
            "boxes": r(p["boxes"], 5),
            "scores": r(p["scores"], 6),
            "keypoints": r(p["keypoints"], 6),
        }
        for name, p in preds.items()
    }


def make_images(out: Path) -> list[Path]:
    from PIL import Image

    src = sorted((uc.ROOT / "example_suite/data/val/images").glob("*.jpg"))
    files = []
    for i, (name, (h, w)) in enumerate(SIZES.items()):
        with Image.open(src[i]) as im:
            im.convert("RGB").resize((w, h), Image.Resampling.BILINEAR).save(out / name)
        files.append(out / name)
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=uc.ROOT / "tests/adapters/ultralytics/data")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    uc.require_ultralytics()
    import torch
    import ultralytics
    from ultralytics import YOLO

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    files = make_images(out)
    with tempfile.TemporaryDirectory(prefix="ul-goldens-") as tmp:
        work = Path(tmp)
        ds = work / "data"
        (ds / "images").mkdir(parents=True)
        for f in files:
            (ds / "images" / f.name).symlink_to(f.resolve())
        data_yaml = ds / "data.yaml"
        data_yaml.write_text(
            json.dumps(
                {
                    "path": str(ds),
                    "train": "images",
                    "val": "images",
                    "names": {0: "person"},
                    "kpt_shape": [17, 3],
                    "flip_idx": [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15],
                }
            )
        )
        calib = uc.calibration_images(
            sorted((uc.ROOT / "example_suite/data/val/images").glob("*.jpg")), IMGSZ
        )
        for name, yaml_name in (
            ("yolov8-pose-tiny", "yolov8n-pose.yaml"),
            ("yolo11-pose-tiny", "yolo11n-pose.yaml"),
        ):
            model = uc.build_pose_model(yaml_name, args.seed, TINY_SCALE)
            uc.calibrate(model, calib, -7.0, args.seed)
            weights = out / f"{name}.pt"
            uc.save_trainer_checkpoint(model, weights, IMGSZ)
            golden: dict = {
                "ultralytics": ultralytics.__version__,
                "torch": torch.__version__,
                "imgsz": IMGSZ,
                "nms": NMS,
                "predict": uc.ultralytics_predict(
                    weights, files, imgsz=IMGSZ, channels_last=False, **NMS
                ),
            }
            _, val = uc.ultralytics_val(
                weights, data_yaml, work / "runs", imgsz=IMGSZ, batch=1, channels_last=False, **NMS
            )
            golden["val"] = {
                f.name: val.get(f.name, {"boxes": [], "scores": [], "keypoints": []}) for f in files
            }
            onnx = Path(
                YOLO(str(weights), task="pose").export(format="onnx", imgsz=IMGSZ, verbose=False)
            )
            target = out / f"{name}.onnx"
            onnx.replace(target)
            golden["onnx"] = uc.ultralytics_predict(target, files, imgsz=IMGSZ, **NMS)
            for key in ("predict", "val", "onnx"):
                golden[key] = rounded(golden[key])
            (out / f"{name}.json").write_text(json.dumps(golden, separators=(",", ":")))
            counts = {
                k: sum(len(v["scores"]) for v in golden[k].values())
                for k in ("predict", "val", "onnx")
            }
            print(name, weights.stat().st_size, "bytes;", "detections", counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
