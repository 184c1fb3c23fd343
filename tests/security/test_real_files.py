"""Real torch.save / safetensors outputs are NOT flagged, and load through the safe loader."""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

import pytest

from pytest_kpmodel.errors import RefusedToLoad
from pytest_kpmodel.security import (
    DEFAULT_ALLOWLIST,
    load_state_dict_safely,
    pick_weights,
    scan_path,
)

NAMES = [
    "resnet18_state_dict",
    "kprcnn_state_dict",
    "kprcnn_fp16",
    "kprcnn_bf16",
    "train_checkpoint_sgd",
    "train_checkpoint_adamw",
    "dtypes",
    "kprcnn_legacy",
    "train_checkpoint_legacy",
    "dtypes_legacy",
    "quantized_mobilenet_v2",
    "safetensors",
]


@pytest.mark.parametrize("name", NAMES)
def test_real_file_is_clean(torch_files, name: str, no_unpickle) -> None:
    path, _ = torch_files[name]
    report = scan_path(path)
    assert report.verdict == "clean", [f.message for f in report.findings]
    assert report.kind in ("torch-zip", "torch-legacy", "safetensors")
    assert report.tensors > 0
    assert not [f for f in report.findings if f.severity != "info"]


def _equal(a, b) -> bool:  # type: ignore[no-untyped-def]
    import argparse

    import torch

    if isinstance(a, torch.Tensor):
        if a.is_quantized:
            return bool(torch.equal(a.int_repr(), b.int_repr())) and a.qscheme() == b.qscheme()

        def raw(t):  # type: ignore[no-untyped-def]
            return t.contiguous().reshape(-1).view(torch.uint8)

        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and a.stride() == b.stride()
            and bool(torch.equal(raw(a), raw(b)))
        )
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, argparse.Namespace):
        return vars(a) == vars(b)
    return a == b


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
@pytest.mark.parametrize("name", NAMES)
def test_real_file_loads_safely(torch_files, name: str, monkeypatch) -> None:
    import torch

    path, original = torch_files[name]
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        assert kwargs.get("weights_only") is True  # never weights_only=False, no fallback
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = load_state_dict_safely(path, scan_path(path))
    assert _equal(original, loaded)
    if name != "safetensors":
        assert calls and all(c["weights_only"] is True for c in calls)


def test_mmap_loading(torch_files) -> None:
    path, original = torch_files["kprcnn_state_dict"]
    loaded = load_state_dict_safely(path, mmap=True)
    assert _equal(original, loaded)


def test_allowlist_covers_what_torch_save_emits(torch_files) -> None:
    """Re-derive the allow-list: every GLOBAL in the real files (read with pickletools, which
    only decodes) is a default allow-list entry."""
    import _compat_pickle

    seen: set[str] = set()
    for name in NAMES:
        path, _ = torch_files[name]
        if not zipfile.is_zipfile(path):
            continue
        with zipfile.ZipFile(path) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        for op, arg, _pos in pickletools.genops(data):
            if op.name == "GLOBAL":
                module, attr = arg.split(" ", 1)
                module, attr = _compat_pickle.NAME_MAPPING.get((module, attr), (module, attr))
                seen.add(f"{module}.{attr}")
                assert (module, attr) in DEFAULT_ALLOWLIST, f"{module}.{attr} from {name}"
    # the entries the real files justify
    for needed in (
        "collections.OrderedDict",
        "collections.Counter",
        "argparse.Namespace",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_qtensor",
        "torch.BFloat16Storage",
        "torch.HalfStorage",
        "torch.CharStorage",
    ):
        assert needed in seen, needed


def test_allowlist_element_sizes_match_torch() -> None:
    import torch

    for (module, name), entry in DEFAULT_ALLOWLIST.items():
        if entry.role == "storage" and module == "torch":
            assert getattr(torch, name)().element_size() == entry.itemsize, name
        if entry.role == "dtype":
            assert getattr(torch, name).itemsize == entry.itemsize, name


def test_loader_refuses_unsafe_and_changed_files(tmp_path: Path, torch_files) -> None:
    from sec_payloads import evil_pickle, replace_member, torch_zip_bytes

    marker = tmp_path / "marker"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(str(marker))))
    with pytest.raises(RefusedToLoad, match=r"^refused to load: .*builtins\.open"):
        load_state_dict_safely(bad)
    assert not marker.exists()
    good = tmp_path / "good.pt"
    good.write_bytes(torch_zip_bytes())
    report = scan_path(good)
    good.write_bytes(torch_zip_bytes() + b"")  # rewritten after the scan: identity changes
    with pytest.raises(RefusedToLoad, match="changed since it was scanned"):
        load_state_dict_safely(good, report)
    with pytest.raises(RefusedToLoad, match="scan report is for"):
        load_state_dict_safely(good, scan_path(torch_files["dtypes"][0]))


def test_loader_refuses_non_state_dict_formats(tmp_path: Path) -> None:
    from sec_payloads import evil_pickle

    p = tmp_path / "x.pkl"
    p.write_bytes(evil_pickle(str(tmp_path / "m")))
    with pytest.raises(RefusedToLoad):
        load_state_dict_safely(p)


def test_pick_weights_prefers_safetensors_by_content(tmp_path: Path, torch_files) -> None:
    st = torch_files["safetensors"][0]
    zp = torch_files["kprcnn_state_dict"][0]
    disguised = tmp_path / "weights.pt"  # a safetensors file with a .pt name
    disguised.write_bytes(st.read_bytes())
    assert pick_weights([zp, disguised]) == disguised
    assert pick_weights([torch_files["kprcnn_legacy"][0], zp]) == zp
    with pytest.raises(RefusedToLoad):
        pick_weights([tmp_path / "missing.bin"])


@pytest.mark.slow
def test_keypointrcnn_r50_fpn_checkpoint_within_default_limits(tmp_path: Path) -> None:
    """The real (random-weight) R50-FPN: default limits pass, as does a training checkpoint."""
    import argparse

    import torch
    import torchvision

    m = torchvision.models.detection.keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[36, 43])
    ckpt = {
        "model": m.state_dict(),
        "optimizer": opt.state_dict(),
        "lr_scheduler": sched.state_dict(),
        "epoch": 0,
        "args": argparse.Namespace(lr=0.02),
    }
    p = tmp_path / "r50.pth"
    torch.save(ckpt, p)
    report = scan_path(p)
    assert report.ok, [f.message for f in report.findings]
    loaded = load_state_dict_safely(p, report)
    assert loaded["model"].keys() == ckpt["model"].keys()
