"""Real torch.save outputs that the scanner must accept (and the loader must load)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any


def _dtype_zoo() -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=g)
    d: dict[str, Any] = {}
    for dt in (
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.float64,
        torch.int8,
        torch.uint8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.bool,
        torch.complex64,
        torch.uint16,
        torch.uint32,
        torch.float8_e4m3fn,
        torch.float8_e5m2,
    ):
        d[str(dt)] = (base * 10).to(dt)
    d["transposed"] = base.t()  # non-contiguous view
    d["slice"] = base[2:4, 1:]  # offset view
    d["shared_slice"] = d["slice"]  # same storage, memo reference
    d["strided"] = base[::2, ::3]
    d["expanded"] = torch.arange(3.0).expand(4, 3)  # stride 0
    d["scalar"] = torch.tensor(3.5)
    d["empty"] = torch.empty(0, 4)
    d["param"] = torch.nn.Parameter(torch.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d["qint8"] = torch.quantize_per_tensor(base, 0.1, 3, torch.qint8)
        d["quint8_per_channel"] = torch.quantize_per_channel(
            base,
            torch.rand(6, generator=g) + 0.1,
            torch.zeros(6, dtype=torch.long),
            0,
            torch.quint8,
        )
    return d


def _train_checkpoint(model: Any, optimizer: str = "sgd") -> dict[str, Any]:
    """Laid out like torchvision/references/detection/train.py's checkpoints."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=1e-4)
        sched: Any = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[16, 22], gamma=0.1)
    else:
        opt = torch.optim.AdamW(params, lr=1e-3)
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=5)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[5])
    # the optimizer state a real step leaves behind, without stepping (fast; params unchanged)
    for p in params:
        if optimizer == "sgd":
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
        else:
            opt.state[p].update(
                step=torch.tensor(120.0),
                exp_avg=torch.zeros_like(p),
                exp_avg_sq=torch.zeros_like(p),
            )
    sched.last_epoch = 3
    args = argparse.Namespace(
        data_path="/datasets/coco",
        dataset="coco_kp",
        model="keypointrcnn_resnet50_fpn",
        device="cuda",
        batch_size=2,
        epochs=46,
        workers=4,
        opt=optimizer,
        lr=0.02,
        momentum=0.9,
        weight_decay=1e-4,
        lr_scheduler="multisteplr",
        lr_steps=[36, 43],
        lr_gamma=0.1,
        print_freq=20,
        output_dir=".",
        resume="",
        start_epoch=0,
        aspect_ratio_group_factor=3,
        rpn_score_thresh=None,
        trainable_backbone_layers=None,
        data_augmentation="hflip",
        sync_bn=False,
        test_only=False,
        use_deterministic_algorithms=False,
        world_size=1,
        dist_url="env://",
        weights=None,
        weights_backbone="ResNet50_Weights.IMAGENET1K_V1",
        amp=True,
        use_copypaste=False,
        distributed=False,
    )
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "lr_scheduler": sched.state_dict(),
        "args": args,
        "epoch": 3,
        "scaler": {
            "scale": 65536.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 2000,
            "_growth_tracker": 0,
        },
    }


def make_real_files(root: Path) -> dict[str, tuple[Path, Any]]:
    import torch
    import torchvision
    from safetensors.torch import save_file

    from pytest_kpmodel.zoo import keypointrcnn_compact

    torch.manual_seed(0)
    out: dict[str, tuple[Path, Any]] = {}

    def save(name: str, obj: Any, **kw: Any) -> None:
        p = root / f"{name}.pth"
        torch.save(obj, p, **kw)
        out[name] = (p, obj)

    kp = keypointrcnn_compact(backbone="resnet18_half")
    save("resnet18_state_dict", torchvision.models.resnet18(weights=None).state_dict())
    save("kprcnn_state_dict", kp.state_dict())
    save(
        "kprcnn_fp16",
        {k: v.half() if v.is_floating_point() else v for k, v in kp.state_dict().items()},
    )
    save(
        "kprcnn_bf16",
        {k: v.bfloat16() if v.is_floating_point() else v for k, v in kp.state_dict().items()},
    )
    save("train_checkpoint_sgd", _train_checkpoint(kp, "sgd"))
    save(
        "train_checkpoint_adamw",
        _train_checkpoint(keypointrcnn_compact(backbone="resnet18_half"), "adamw"),
    )
    save("dtypes", _dtype_zoo())
    save("kprcnn_legacy", kp.state_dict(), _use_new_zipfile_serialization=False)
    save(
        "train_checkpoint_legacy",
        _train_checkpoint(kp, "sgd"),
        _use_new_zipfile_serialization=False,
    )
    # torch's legacy loader cannot rebuild UntypedStorage tensors (uint16/32, float8)
    legacy_dtypes = {
        k: v
        for k, v in _dtype_zoo().items()
        if k not in ("torch.uint16", "torch.uint32") and "float8" not in k
    }
    save("dtypes_legacy", legacy_dtypes, _use_new_zipfile_serialization=False)
    # a quantized backbone: packed Linear parameters keep their dtype (torch.qint8) as a value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torchvision.models.quantization.mobilenet_v2(weights=None, quantize=True)
    save("quantized_mobilenet_v2", quantized.state_dict())
    st = root / "kprcnn.safetensors"
    sd = {k: v.contiguous() for k, v in kp.state_dict().items()}
    save_file(sd, str(st), metadata={"format": "pt", "name": "kp-tiny"})
    out["safetensors"] = (st, sd)
    return out
