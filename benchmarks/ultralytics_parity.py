"""The plugin's ``format = "ultralytics"`` adapter next to the ``ultralytics`` package itself.

    /path/to/venv-with-ultralytics/bin/python benchmarks/ultralytics_parity.py \
        [--images 200] [--imgsz 384] [--trained example_suite/models/kp-tiny-yolo] [--json OUT]

Exits 2 when ``ultralytics`` is not importable (it is AGPL-3.0 and never a plugin dependency).
Offline: models are built from the package's ``yolov8n-pose.yaml`` and ``yolo11n-pose.yaml``
with seeded random weights (batch-norm statistics from real images, class biases set so a few
hundred anchors pass conf=0.001), saved as the trainer saves (``save_model`` dict, then
``strip_optimizer``: model in fp16). For each model:

1. ``model.predict`` (conf 0.001, iou 0.7, max_det 300) vs the plugin with
   ``letterbox = "predict"`` on the synthetic validation images plus five of other sizes and
   aspect ratios (upscaled, downscaled, portrait, wide, odd sizes);
   The same with ``channels_last=False``: Ultralytics switches x86 CPUs to channels-last by
   default, whose convolution kernels round differently (differences of ~1e-4 in scores);
   in the NCHW layout the plugin uses, the two agree to float rounding;
2. ``model.val(data=..., batch=1)`` (its predictions captured at full precision) vs the plugin
   with ``letterbox = "val"`` on the validation images (converted to Ultralytics' format in a
   temporary folder) and the five extra images;
3. Ultralytics' ONNX export (``model.export(format="onnx")``, raw ``[1, 56, N]`` head) run by
   Ultralytics vs the plugin's ``output_layout = "yolo-pose"`` decoder, on the same images;
4. AP: ``model.val``'s pose mAP50-95 / mAP50 next to pycocotools on the predictions val
   scored and the plugin's COCO keypoint AP on its own predictions, and that COCO AP with
   Ultralytics' conventions swapped in one at a time (300 detections per image instead of
   COCO's 20; OKS area 0.53 x the box instead of the annotation's area).

Each comparison prints: images with the same detection count, detections, and the largest
box / keypoint (px) and score differences over detections matched in score order.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ultralytics_common as uc  # noqa: E402

VAL = uc.ROOT / "example_suite" / "data" / "val"
EXTRA_SIZES = [(480, 640), (200, 300), (500, 300), (256, 1000), (193, 257)]  # (h, w)


def extra_images(src: list[Path], out: Path) -> list[Path]:
    """Validation images resized to other sizes and aspect ratios (PNG: no second JPEG loss)."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (h, w) in enumerate(EXTRA_SIZES):
        with Image.open(src[i]) as im:
            path = out / f"extra_{w}x{h}.png"
            im.convert("RGB").resize((w, h), Image.Resampling.BILINEAR).save(path)
        files.append(path)
    return files


def extra_annotations(coco: dict, extra: list[Path]) -> dict:
    """Annotations for the resized copies: the source image's people, scaled."""
    images = list(coco["images"])
    anns = list(coco["annotations"])
    next_image = max(im["id"] for im in images) + 1
    next_ann = max(a["id"] for a in anns) + 1
    for i, path in enumerate(extra):
        src = images[i]
        h, w = EXTRA_SIZES[i]
        sx, sy = w / src["width"], h / src["height"]
        images.append({"id": next_image, "file_name": path.name, "width": w, "height": h})
        for a in coco["annotations"]:
            if a["image_id"] != src["id"]:
                continue
            x, y, bw, bh = a["bbox"]
            k = a["keypoints"]
            kk = []
            for j in range(0, len(k), 3):
                kk += [k[j] * sx, k[j + 1] * sy, k[j + 2]]
            anns.append(
                {
                    **a,
                    "id": next_ann,
                    "image_id": next_image,
                    "bbox": [x * sx, y * sy, bw * sx, bh * sy],
                    "area": a["area"] * sx * sy,
                    "keypoints": kk,
                }
            )
            next_ann += 1
        next_image += 1
    return {**coco, "images": images, "annotations": anns}


def coco_ap(gt: dict, preds: dict[str, dict], names: dict[str, int]) -> dict[str, float]:
    """The plugin's COCO metrics (pycocotools-exact) of per-file predictions."""
    from pytest_kpmodel.metrics import evaluate

    results = []
    for name, p in preds.items():
        for b, s, k in zip(p["boxes"], p["scores"], p["keypoints"], strict=True):
            results.append(
                {
                    "image_id": names[name],
                    "category_id": 1,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": s,
                    "keypoints": [v for kp in k for v in kp],
                }
            )
    m = evaluate(gt, results, bootstrap=0, error_analysis=False, per_keypoint=False).to_json()
    return {
        "box_ap": m["bbox"]["AP"],
        "box_ap50": m["bbox"]["AP50"],
        "kp_ap": m["keypoints"]["AP"],
        "kp_ap50": m["keypoints"]["AP50"],
    }


def coco_kp_ap_variants(gt: dict, preds: dict[str, dict], names: dict[str, int]) -> dict:
    """pycocotools keypoint AP of the same predictions with one COCO convention at a time
    changed to Ultralytics': all 300 detections per image instead of the top 20, and OKS
    scaled by 0.53 x the ground-truth box area instead of the annotation's area."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = []
    for name, p in preds.items():
        for b, s, k in zip(p["boxes"], p["scores"], p["keypoints"], strict=True):
            results.append(
                {
                    "image_id": names[name],
                    "category_id": 1,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": s,
                    "keypoints": [v for kp in k for v in kp],
                }
            )

    def ap(ground: dict, max_dets: int) -> float:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = copy.deepcopy(ground)
            coco.createIndex()
            if not results:
                return 0.0
            ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints")
            ev.params.maxDets = [max_dets]
            ev.evaluate()
            ev.accumulate()
        # not ev.summarize(): its keypoint AP reads the maxDets=20 column, -1 for any other
        precision = ev.eval["precision"][:, :, 0, 0, -1]  # IoU x recall, area "all"
        valid = precision[precision > -1]
        return float(valid.mean()) if valid.size else 0.0

    box_area = copy.deepcopy(gt)
    for a in box_area["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3] * 0.53
    return {
        "coco": ap(gt, 20),
        "max_det_300": ap(gt, 300),
        "area_0.53_box": ap(box_area, 20),
        "both": ap(box_area, 300),
    }


def run_model(
    label: str, weights: Path, files: list[Path], data_yaml: Path, gt: dict, work: Path, imgsz: int
) -> dict[str, Any]:
    names = {im["file_name"]: im["id"] for im in gt["images"]}
    nms = {"conf": 0.001, "iou": 0.7, "max_det": 300}
    out: dict[str, Any] = {"model": label, "weights": str(weights), "imgsz": imgsz}
    t0 = time.perf_counter()
    ref = uc.ultralytics_predict(weights, files, imgsz=imgsz, **nms)
    card = uc.write_card(
        work / f"{label}-predict", weights, {"imgsz": imgsz, "letterbox": "predict", **nms}
    )
    ours = uc.plugin_predict(card, files)
    out["predict"] = uc.compare(ref, ours)
    # Ultralytics runs channels-last on x86 CPUs by default (other conv kernels, other float
    # rounding); in the plugin's NCHW layout the two agree to the last bits
    ref = uc.ultralytics_predict(weights, files, imgsz=imgsz, channels_last=False, **nms)
    out["predict-nchw"] = uc.compare(ref, ours)

    metrics, val_ref = uc.ultralytics_val(
        weights, data_yaml, work / "runs", imgsz=imgsz, batch=1, **nms
    )
    card = uc.write_card(
        work / f"{label}-val", weights, {"imgsz": imgsz, "letterbox": "val", **nms}
    )
    ours = uc.plugin_predict(card, files)
    val_ref = {
        f.name: val_ref.get(f.name, {"boxes": [], "scores": [], "keypoints": []}) for f in files
    }
    out["val"] = uc.compare(val_ref, ours)
    _, nchw = uc.ultralytics_val(
        weights, data_yaml, work / "runs", imgsz=imgsz, batch=1, channels_last=False, **nms
    )
    nchw = {f.name: nchw.get(f.name, {"boxes": [], "scores": [], "keypoints": []}) for f in files}
    out["val-nchw"] = uc.compare(nchw, ours)
    out["ap"] = {
        "ultralytics_val": {
            "pose_map50_95": float(metrics.pose.map),
            "pose_map50": float(metrics.pose.map50),
            "box_map50_95": float(metrics.box.map),
            "box_map50": float(metrics.box.map50),
        },
        "pycocotools_on_ultralytics_val_predictions": coco_ap(gt, val_ref, names),
        "plugin": coco_ap(gt, ours, names),
        "plugin_kp_ap_with_ultralytics_conventions": coco_kp_ap_variants(gt, ours, names),
    }

    from ultralytics import YOLO

    onnx_path = Path(
        YOLO(str(weights), task="pose").export(format="onnx", imgsz=imgsz, verbose=False)
    )
    ref = uc.ultralytics_predict(onnx_path, files, imgsz=imgsz, **nms)
    card = uc.write_card(work / f"{label}-onnx", onnx_path, {**nms}, fmt="onnx")
    out["onnx"] = uc.compare(ref, uc.plugin_predict(card, files))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def print_report(results: list[dict[str, Any]]) -> None:
    print(
        "\n=== Ultralytics parity (pytest-kpmodel format 'ultralytics' vs the ultralytics package) ==="
    )
    head = (
        f"{'model':<16}{'path':<14}{'same count':>12}{'dets (ul/ours)':>16}{'unmatched':>10}"
        f"{'box px':>10}{'kpt px':>10}{'score':>10}"
    )
    print(head)
    for r in results:
        for path in ("predict", "predict-nchw", "val", "val-nchw", "onnx"):
            c = r[path]
            print(
                f"{r['model']:<16}{path:<14}{c['images_same_count']:>6}/{c['images']:<5}"
                f"{c['detections_ultralytics']:>8}/{c['detections_plugin']:<7}{c['unmatched']:>10}"
                f"{c['max_box_diff_px']:>10.2e}{c['max_keypoint_diff_px']:>10.2e}{c['max_score_diff']:>10.2e}"
            )
    print("\n=== AP on the same data (COCO keypoint AP vs `yolo val pose`) ===")
    print(f"{'model':<16}{'source':<46}{'kp AP':>8}{'kp AP50':>9}{'box AP':>8}{'box AP50':>9}")
    for r in results:
        a = r["ap"]
        u = a["ultralytics_val"]
        rows = [
            (
                "ultralytics val (its own OKS / mAP)",
                u["pose_map50_95"],
                u["pose_map50"],
                u["box_map50_95"],
                u["box_map50"],
            ),
        ]
        for src, key in (
            (
                "pycocotools on ultralytics val's predictions",
                "pycocotools_on_ultralytics_val_predictions",
            ),
            ("plugin (its own predictions, COCO eval)", "plugin"),
        ):
            m = a[key]
            rows.append((src, m["kp_ap"], m["kp_ap50"], m["box_ap"], m["box_ap50"]))
        for src, *vals in rows:
            print(f"{r['model']:<16}{src:<46}" + "".join(f"{v:>8.4f} " for v in vals))
        v = a["plugin_kp_ap_with_ultralytics_conventions"]
        print(
            f"{r['model']:<16}plugin kp AP, COCO {v['coco']:.4f}; all 300 dets {v['max_det_300']:.4f}; "
            f"OKS area 0.53 x box {v['area_0.53_box']:.4f}; both {v['both']:.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200, help="validation images to use")
    ap.add_argument("--imgsz", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trained", type=Path, default=uc.ROOT / "example_suite/models/kp-tiny-yolo")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temp one")
    ap.add_argument("--no-random", action="store_true", help="only the trained model")
    args = ap.parse_args(argv)
    uc.require_ultralytics()

    coco = json.loads((VAL / "annotations.json").read_text())
    coco_images = sorted(coco["images"], key=lambda im: im["id"])[: args.images]
    keep = {im["id"] for im in coco_images}
    coco = {
        **coco,
        "images": coco_images,
        "annotations": [a for a in coco["annotations"] if a["image_id"] in keep],
    }
    with tempfile.TemporaryDirectory(prefix="ul-parity-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        val_files = [VAL / "images" / im["file_name"] for im in coco_images]
        extra = extra_images(val_files, work / "extra")
        gt = extra_annotations(coco, extra)
        ds = work / "yolo-data"
        data_yaml = uc.write_yolo_dataset(
            gt, VAL / "images", ds, [im["file_name"] for im in coco["images"]]
        )
        for f in extra:
            (ds / "images" / f.name).unlink(missing_ok=True)
        uc.write_yolo_dataset(gt, extra[0].parent, ds, [f.name for f in extra])
        files = val_files + extra
        (work / "gt.json").write_text(json.dumps(gt))

        results = []
        calib = uc.calibration_images(val_files, args.imgsz)
        randoms = (
            ("yolov8n-random", "yolov8n-pose.yaml", -9.0),
            ("yolo11n-random", "yolo11n-pose.yaml", -9.0),
        )
        for label, yaml_name, bias in () if args.no_random else randoms:
            model = uc.build_pose_model(yaml_name, args.seed)
            uc.calibrate(model, calib, bias, args.seed)
            weights = work / f"{label}.pt"
            uc.save_trainer_checkpoint(model, weights, args.imgsz)
            results.append(run_model(label, weights, files, data_yaml, gt, work, args.imgsz))
            print(json.dumps(results[-1], indent=1), flush=True)
        trained = sorted(args.trained.glob("*.pt")) if args.trained.is_dir() else []
        if trained:
            results.append(
                run_model("kp-tiny-yolo", trained[0], files, data_yaml, gt, work, args.imgsz)
            )
        else:
            print(f"(no trained model at {args.trained}: skipped)")
        print_report(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
