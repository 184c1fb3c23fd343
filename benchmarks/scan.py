"""Scan time of a Keypoint R-CNN R50-FPN state dict vs sha256 of the same file (vs picklescan).

    .venv/bin/python benchmarks/scan.py [--repeats 5] [--keep PATH]

Builds ``torchvision.models.detection.keypointrcnn_resnet50_fpn(weights=None,
weights_backbone=None)`` (random weights, ~237 MB), saves its state dict with ``torch.save``,
then times, interleaved and from a warm page cache, the median of ``--repeats`` runs of:

* ``pytest_kpmodel.security.scan_path`` (full zip structure + CRC-32 of every member + the
  symbolic pickle scan + tensor-record checks);
* ``hashlib.sha256`` over the file (1 MiB reads) - what the provenance check costs anyway;
* ``picklescan.scanner.scan_file_path`` when picklescan is installed (a pickletools-based
  block-list scanner, for reference: it does not check CRCs or structure).

Target: scan <= 2x sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def build(path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None
    )
    torch.save(model.state_dict(), path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="use/keep the checkpoint at this path")
    args = ap.parse_args()

    from pytest_kpmodel.security import scan_path

    tmp = None
    if args.keep is not None and args.keep.exists():
        path = args.keep
    else:
        tmp = tempfile.TemporaryDirectory()
        path = args.keep or Path(tmp.name) / "keypointrcnn_resnet50_fpn.pth"
        t0 = time.perf_counter()
        build(path)
        print(f"built and saved {path.name} in {time.perf_counter() - t0:.1f}s")
    size = os.path.getsize(path)

    try:
        from picklescan.scanner import scan_file_path
    except ImportError:
        scan_file_path = None

    sha256_file(path)  # warm the page cache
    report = scan_path(path)
    print(
        f"file: {size / 1e6:.1f} MB, kind {report.kind}, verdict {report.verdict}, "
        f"{report.tensors} tensors, {report.storages} storages"
    )
    if not report.ok:
        for f in report.findings:
            print("  ", f.message)
        return 1
    times: dict[str, list[float]] = {"sha256": [], "kpmodel scan": []}
    if scan_file_path is not None:
        times["picklescan"] = []
        ps = scan_file_path(str(path))
        print(
            f"picklescan: {ps.scanned_files} files, {ps.issues_count} issues, "
            f"infected={ps.infected_files}"
        )
    for _ in range(args.repeats):
        t = time.perf_counter()
        sha256_file(path)
        times["sha256"].append(time.perf_counter() - t)
        t = time.perf_counter()
        scan_path(path)
        times["kpmodel scan"].append(time.perf_counter() - t)
        if scan_file_path is not None:
            t = time.perf_counter()
            scan_file_path(str(path))
            times["picklescan"].append(time.perf_counter() - t)
    base = statistics.median(times["sha256"])
    print(f"\n{'':14} {'median s':>9} {'min s':>8} {'GB/s':>6} {'x sha256':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:14} {med:9.3f} {min(ts):8.3f} {size / med / 1e9:6.2f} {med / base:9.2f}")
    ratio = statistics.median(times["kpmodel scan"]) / base
    print(f"\nscan / sha256 = {ratio:.2f} (target <= 2.00): {'OK' if ratio <= 2 else 'MISSED'}")
    if tmp is not None and args.keep is None:
        tmp.cleanup()
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
