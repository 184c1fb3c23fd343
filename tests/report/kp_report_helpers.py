"""Reports for the HTML tests, built by the modules' own code on tiny data (so the layouts the
renderer reads cannot drift from what the modules write)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.keypoints import COCO17, COCO_NAMES

# A standing person facing the camera, in units of half the box (x right, y down) from its centre.
POSE = np.array(
    [[0.0, -0.8], [0.08, -0.86], [-0.08, -0.86], [0.18, -0.82], [-0.18, -0.82], [0.45, -0.5],
     [-0.45, -0.5], [0.6, -0.1], [-0.6, -0.1], [0.65, 0.2], [-0.65, 0.2], [0.28, 0.15],
     [-0.28, 0.15], [0.3, 0.55], [-0.3, 0.55], [0.3, 0.92], [-0.3, 0.92]]
)  # fmt: skip


def person(box: tuple[float, float, float, float]) -> np.ndarray:
    """[17, 3] keypoints (x, y, v=2) of a person filling xyxy ``box``."""
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    kp = np.zeros((17, 3))
    kp[:, 0] = cx + POSE[:, 0] * hw
    kp[:, 1] = cy + POSE[:, 1] * hh
    kp[:, 2] = 2
    return kp


def scene(h: int, w: int, boxes: list[tuple[int, int, int, int]], seed: int = 0) -> torch.Tensor:
    """A smooth background with bright figures at ``boxes``; float CHW in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h).view(1, h, 1)
    xx = torch.linspace(0, 1, w).view(1, 1, w)
    c = torch.rand(3, 1, 1, generator=g) * 0.3 + 0.1
    img = (c + 0.25 * xx * torch.rand(3, 1, 1, generator=g) + 0.2 * yy).expand(3, h, w).clone()
    for x1, y1, x2, y2 in boxes:
        img[:, y1:y2, x1 + (x2 - x1) // 4 : x2 - (x2 - x1) // 4] = torch.tensor(
            [0.85, 0.7, 0.6]
        ).view(3, 1, 1)
    img += 0.02 * torch.randn(3, h, w, generator=g)
    return img.clamp(0, 1)


class TinyWorld:
    """A few images of different widths (the fake model recognises them by width), COCO ground
    truth for them, and a fake model whose keypoints drift with how much an image differs from
    its clean version, so corruptions lower AP with severity as real models do."""

    def __init__(self, n: int = 3) -> None:
        self.images, self.anns, self.coco_images = [], [], []
        ann_id = 1
        for i in range(n):
            h, w = 96, 128 + 8 * i
            boxes = [(16 + 6 * i, 10, 60 + 6 * i, 90)] + ([(76, 16, 116, 92)] if i % 2 == 0 else [])
            self.images.append(scene(h, w, boxes, seed=i))
            self.coco_images.append({"id": i + 1, "file_name": f"{i}.png", "width": w, "height": h})
            anns = []
            for b in boxes:
                kp = person(b)
                x1, y1, x2, y2 = b
                anns.append({"id": ann_id, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                             "bbox": [x1, y1, x2 - x1, y2 - y1], "area": 0.6 * (x2 - x1) * (y2 - y1),
                             "keypoints": kp.reshape(-1).tolist(), "num_keypoints": 17})  # fmt: skip
                ann_id += 1
            self.anns.append(anns)
        self.gt = {
            "images": self.coco_images,
            "annotations": [a for anns in self.anns for a in anns],
            "categories": [
                {
                    "id": 1,
                    "name": "person",
                    "keypoints": list(COCO_NAMES),
                    "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton],
                }
            ],  # fmt: skip
        }
        self.model = FakeModel(self)


class FakeModel:
    device = torch.device("cpu")
    num_keypoints = 17

    def __init__(self, world: TinyWorld) -> None:
        self.world = world
        self.by_width = {int(im.shape[-1]): i for i, im in enumerate(world.images)}

    def predict(self, images: list[torch.Tensor]) -> list[Prediction]:
        out = []
        for img in images:
            i = self.by_width.get(int(img.shape[-1]), 0)
            clean = self.world.images[i]
            drift = float((img - clean).abs().mean()) if img.shape == clean.shape else 0.3
            g = torch.Generator().manual_seed(1000 * i + int(drift * 1e4))
            boxes, scores, kps = [], [], []
            for j, a in enumerate(self.world.anns[i]):
                x, y, w, h = a["bbox"]
                kp = torch.tensor(a["keypoints"], dtype=torch.float32).view(17, 3)
                kp[:, :2] += torch.randn(17, 2, generator=g) * (1.0 + 25.0 * drift)
                if i == 1 and j == 0:  # one image with left and right swapped
                    kp = kp[torch.tensor(COCO17.flip_index())]
                kp[:, 2] = 1.0
                boxes.append([x, y, x + w, y + h])
                scores.append(max(0.05, 0.95 - 0.1 * j - drift))
                kps.append(kp)
            if i == 2:  # a confident false positive
                boxes.append([2.0, 2.0, 30.0, 40.0])
                scores.append(0.8)
                kps.append(torch.tensor(person((2, 2, 30, 40)), dtype=torch.float32))
            out.append(Prediction(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores),
                                  torch.ones(len(boxes), dtype=torch.int64), torch.stack(kps)))  # fmt: skip
        return out


def coco_results(world: TinyWorld, preds: list[Prediction]) -> list[dict[str, Any]]:
    from pytest_kpmodel.predictions import PredictionSet

    ids = [im["id"] for im in world.coco_images]
    return PredictionSet(ids, preds).to_coco_results()


def small_metrics(world: TinyWorld, preds: list[Prediction]) -> dict[str, Any]:
    from pytest_kpmodel.metrics import evaluate

    m = evaluate(world.gt, coco_results(world, preds), bootstrap=0, per_keypoint=False,
                 error_analysis=False, names=COCO_NAMES)  # fmt: skip
    return {"bbox": m.bbox.to_json(), "keypoints": m.keypoints.to_json()}


def synthetic_metrics(seed: int, jitter: float = 0.0) -> dict[str, Any]:
    """``KeypointMetrics.to_json()`` on the metrics module's own synthetic COCO set."""
    from pytest_kpmodel.metrics import evaluate
    from pytest_kpmodel.metrics.synthetic import make_coco_set

    gt, results = make_coco_set(seed, num_images=24, false_positives_per_image=0.5)
    if jitter:
        rng = np.random.default_rng(seed + 1)
        for r in results:
            kp = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)
            kp[:, :2] += rng.normal(0, jitter, size=(len(kp), 2))
            r["keypoints"] = kp.reshape(-1).tolist()
    return evaluate(gt, results, names=COCO_NAMES, bootstrap=40, seed=0).to_json()


def bench_entries(world: TinyWorld) -> list[dict[str, Any]]:
    """``BenchResult.to_json()`` from a real measurement (of the fake model: an opaque
    stage), plus one entry from synthetic GPU-like timings through the same statistics code."""
    from pytest_kpmodel.bench.measure import measure
    from pytest_kpmodel.bench.result import BenchResult
    from pytest_kpmodel.bench.settings import BenchSettings
    from pytest_kpmodel.bench.timing import summarize

    settings = BenchSettings(batch_size=2, image_size=None, warmup=2, iters=10, num_images=2,
                             stage_iters=3)  # fmt: skip
    real = measure(world.model, settings=settings, images=world.images).to_json()
    rng = random.Random(0)
    times = [0.021 + rng.gammavariate(2.0, 0.0015) for _ in range(80)]
    synthetic = BenchResult(
        settings=BenchSettings(batch_size=4, precision="fp16", iters=80),
        device="cuda:0",
        device_name="NVIDIA H100 80GB HBM3",
        latency=summarize(times, 4, sum(times) * 1.03),
        warmup=10,
        images=8,
        image_sizes=[[800, 1333]] * 8,
        cpu_threads=16,
        interop_threads=16,
        cudnn_benchmark_restored_to=False,
        detections={"mean": 3.4, "min": 0, "max": 9, "per_image": [3, 4]},
        stages={"stages_ms": {"preprocess": 1.9, "backbone": 11.2, "rpn": 3.1, "roi_heads": 6.0,
                              "postprocess": 0.4, "other": 0.6},
                "stage_total_ms": 23.2, "stage_iters": 20, "stage_kind": "torchvision-rcnn"},
        memory={"peak_vram_mib": 1830.5, "peak_reserved_mib": 2048.0},
        times_ms=[t * 1000 for t in times],
    ).to_json()  # fmt: skip
    return [real, synthetic]


def parity_table() -> dict[str, Any]:
    from pytest_kpmodel.bench.parity_table import ParityRow, ParityTable

    rows = [
        ParityRow("fp32", "ok", device="cuda:0", precision="fp32", latency_ms_p50=41.2,
                  latency_ms_p90=44.0, fps=23.9, box_ap=0.612, kp_ap=0.655, mean_oks=1.0,
                  oks50_fraction=1.0, detections=512),
        ParityRow("fp16", "ok", device="cuda:0", precision="fp16", latency_ms_p50=22.5,
                  latency_ms_p90=24.1, fps=43.8, box_ap=0.611, kp_ap=0.652, mean_oks=0.993,
                  oks50_fraction=0.998, detections=511),
        ParityRow("onnx", "skipped", reason="onnxruntime is not installed"),
        ParityRow("exported", "failed", reason="RuntimeError: <script>alert(1)</script>"),
    ]  # fmt: skip
    return ParityTable("fp32", "cuda:0", 50, {"batch_size": 1}, rows).to_json()


def robustness_section(
    world: TinyWorld, folder: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``CorruptionEvalResult.to_dict()``, stability results and a trigger scan result, and the
    stability renderings copied in as ``robustness`` artifacts."""
    from pytest_kpmodel.report.assets import add_file
    from pytest_kpmodel.robustness import corruption_eval, stability
    from pytest_kpmodel.robustness.corruptions import corruption
    from pytest_kpmodel.robustness.trigger import Trigger, TriggerEffect, TriggerScanResult

    model = world.model
    corr = corruption_eval.run(
        model, world.images, lambda preds: small_metrics(world, preds), severities=(1, 3, 5),
        corruptions=("gaussian_noise", "defocus_blur", "brightness", "pixelate"),
        batch_size=4,
    )  # fmt: skip
    clean = model.predict(world.images)
    stab = stability.measure(model, world.images, clean, corruption("gaussian_noise", 4),
                             save=folder / "_stability", max_saved=2)  # fmt: skip
    trig = TriggerScanResult(True, Trigger(size=0.06, x=0.9, y=0.1),
                             TriggerEffect(0.75, 0.0, 4, 3, 0), 0.5, 37)  # fmt: skip
    arts = [
        add_file(
            p,
            folder,
            "robustness",
            f"least stable under gaussian_noise s4: image {Path(p).stem}",
            {"severity": 4},
            name=f"stability-{Path(p).stem}",
        )  # fmt: skip
        for p in stab.saved
    ]
    section = {
        "corruption": corr.to_dict(),
        "stability": [stab.to_dict()],
        "trigger": trig.to_dict(),
    }
    return section, arts


def checks() -> list[dict[str, Any]]:
    """``CheckResult``/``PolicyResult`` JSON as ``session.record_check`` stores it."""
    from pytest_kpmodel.findings import CheckResult, Finding, Gate
    from pytest_kpmodel.policy import PolicyResult, SubCheck

    def rec(nodeid, marker, result):
        return {"nodeid": nodeid, "marker": marker, **result.to_json()}

    prov = CheckResult("kp_provenance", findings=[
        Finding("provenance.signature", "kp-tiny-mod.sig: unsigned (no signature file)", "info"),
        Finding("provenance.source", "source https://evil.example/x does not match https://models.example.org/*"),
    ])  # fmt: skip
    lic = PolicyResult("kp_license", subchecks=[SubCheck("model", "passed")])
    deps = PolicyResult("kp_dependencies", findings=[
        Finding("dependencies.cuda", "cuda: skipped, no CUDA on this machine", "info", {"skipped": "no CUDA"}),
        Finding("dependencies.requires", "torchvision 0.29.1 does not satisfy torchvision<0.20"),
    ], subchecks=[SubCheck("python", "passed"), SubCheck("requires", "failed"),
                  SubCheck("cuda", "skipped", "no CUDA on this machine")])  # fmt: skip
    sec = CheckResult("kp_security", findings=[
        Finding("security.pickle", "model.pt: global os.system is not allowed", "fail",
                {"file": "model.pt", "global": "os.system"}),
    ])  # fmt: skip
    thr = CheckResult("kp_thresholds", gates=[
        Gate("accuracy", "keypoints AP", 0.583, 0.6),
        Gate("accuracy", "box AP", 0.612, 0.5, baseline=0.6),
        Gate("speed", "latency p50", 41.2, 50.0, "<=", unit=" ms"),
        Gate("speed", "fps", 23.9, 20.0),
        Gate("robustness", "rPC", 0.71, 0.6),
    ])  # fmt: skip
    skipped = CheckResult("kp_thresholds", skipped="vram_mib needs a CUDA device")
    return [
        rec("specs/test_accept.py::test_provenance", "kp_provenance", prov),
        rec("specs/test_accept.py::test_license", "kp_license", lic),
        rec("specs/test_accept.py::test_deps", "kp_dependencies", deps),
        rec("specs/test_accept.py::test_security", "kp_security", sec),
        rec("specs/test_accept.py::test_quality", "kp_thresholds", thr),
        rec("specs/test_accept.py::test_vram", "kp_thresholds", skipped),
    ]


def diff_section(folder: Path) -> dict[str, Any]:
    """``ModelDiff.to_json()`` of two tiny models (the base and one with a wider keypoint head)."""
    from kp_factories import TINY_KWARGS, tiny_module
    from pytest_kpmodel.provenance.diff import diff_cards

    def write(sub: str, seed: int, extra: str, **overrides) -> Path:
        from safetensors.torch import save_file

        from pytest_kpmodel.provenance.digests import sha256_file

        d = folder / sub
        d.mkdir(parents=True, exist_ok=True)
        module = tiny_module(seed, **overrides)
        save_file(
            {k: v.contiguous() for k, v in module.state_dict().items()}, str(d / "m.safetensors")
        )
        kw = "\n".join(f"{k} = {v!r}".replace("'", '"').replace("True", "true").replace("False", "false")
                       for k, v in {**TINY_KWARGS, **overrides}.items())  # fmt: skip
        card = d / "kpmodel.toml"
        card.write_text(
            f'schema = 1\n[model]\nname = "{sub}"\nversion = "1.0"\nformat = "safetensors"\n'
            f'weights = "m.safetensors"\nsha256 = "{sha256_file(d / "m.safetensors")}"\n'
            f'architecture = "pytest_kpmodel.zoo:keypointrcnn_compact"\n[model.kwargs]\n{kw}\n{extra}'
        )
        return card

    base = write("base", 0, "")
    mod = write("mod", 1, '[provenance]\nmodifications = ["keypoint head: 2 convs", "fine-tuned"]\n',
                keypoint_head_depth=2)  # fmt: skip
    return diff_cards(mod, base, flops=False).to_json()


def security_section(folder: Path) -> dict[str, Any]:
    from safetensors.torch import save_file

    from pytest_kpmodel.security.guard import GuardEvent
    from pytest_kpmodel.security.scan import scan_path

    p = folder / "_scan" / "w.safetensors"
    p.parent.mkdir(parents=True, exist_ok=True)
    save_file({"a": torch.zeros(3)}, str(p))
    event = GuardEvent("socket.connect", "network", ("('10.0.0.1', 443)",), True,
                       "network=False", ["model.py:12 in forward"])  # fmt: skip
    return {"scans": [scan_path(p).to_json()], "events": [event.to_json()]}


def tiny_models():
    """A tiny random torchvision Keypoint R-CNN behind ``TorchDetectionModel`` and a "base":
    the same module with slightly different backbone weights."""
    import copy

    from kp_factories import tiny_module
    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.adapters.torch_module import TorchDetectionModel

    module = tiny_module(0)
    base = copy.deepcopy(module)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in base.backbone.parameters():
            p.add_(0.2 * p.std().nan_to_num(0.1) * torch.randn(p.shape, generator=g))
    return TorchDetectionModel(module, LoadOptions(), 17), TorchDetectionModel(
        base, LoadOptions(), 17
    )


def rich_report(folder: Path, model: Any, base: Any) -> dict[str, Any]:
    """Every section, from the modules' own outputs; artifacts written under ``folder``."""
    from pytest_kpmodel.report.feature_maps import render_feature_maps
    from pytest_kpmodel.report.gallery import render_gallery

    world = TinyWorld()
    preds = world.model.predict(world.images)
    artifacts = render_gallery(world.images, world.anns, preds, COCO17, folder, n=4,
                               image_ids=[im["id"] for im in world.coco_images])  # fmt: skip
    artifacts += render_feature_maps(model, world.images[:1], folder, base_model=base)
    robustness, rob_arts = robustness_section(world, folder)
    artifacts += rob_arts
    return {
        "schema": 1,
        "model": {"name": "kp-tiny-mod", "version": "1.1.0", "sha256": "ab" * 32,
                  "sha256_pinned": "ab" * 32, "format": "safetensors", "card": "/models/kpmodel.toml"},
        "environment": {"python": "3.11.2", "platform": "linux", "torch": torch.__version__,
                        "torchvision": "0.29.1", "cuda": None, "gpu": None, "device": "cpu"},
        "settings": {"device": "cpu", "precision": "fp32", "batch_size": 1, "max_images": None, "seed": 0},
        "checks": checks(),
        "metrics": synthetic_metrics(0),
        "baseline": {"model": {"name": "kp-tiny-base", "version": "1.0.0"},
                     "metrics": synthetic_metrics(0, jitter=3.0)},
        "bench": bench_entries(world),
        "parity": parity_table(),
        "robustness": robustness,
        "diff": diff_section(folder / "_models"),
        "security": security_section(folder),
        "card": {
            "path": "/models/kp-tiny-mod/kpmodel.toml",
            "model": {"name": "kp-tiny-mod", "version": "1.1.0", "format": "safetensors",
                      "weights": "kp-tiny-mod.safetensors", "sha256": "ab" * 32,
                      "architecture": "torchvision:keypointrcnn_resnet50_fpn"},
            "provenance": {"source": "https://models.example.org/kp-tiny-mod/1.1.0",
                           "base": "../kp-tiny-base/kpmodel.toml", "signature": None,
                           "modifications": ["keypoint head: 4 convs instead of 8",
                                             "trained with low-light augmentation"]},
            "license": {"spdx": "Apache-2.0", "file": "LICENSE"},
            "dependencies": {"python": ">=3.10", "requires": ["torch>=2.4"], "cuda": ">=12.0"},
            "claims": {"box_ap": 0.62, "kp_ap": 0.71},
        },
        "artifacts": artifacts,
        "warnings": ["weights digest differs from the <b>card</b>"],
    }  # fmt: skip
