"""A realistic model folder, written from code: weights and everything that travels with them
(card, config, label and keypoint lists, a tokenizer, logs, curves, plots, numeric arrays, an
ONNX export with external data). Every file in it is clean for the folder scan."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + bytes(range(width * 3)) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (24, 16), bytes(i % 251 for i in range(24 * 16 * 3))).save(buf, "JPEG")
    return buf.getvalue()


def npy_bytes(array) -> bytes:  # type: ignore[no-untyped-def]
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=array.dtype.hasobject)
    return buf.getvalue()


def npz_bytes(compressed: bool = False, **arrays) -> bytes:  # type: ignore[no-untyped-def]
    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def tfevents_bytes(payloads: tuple[bytes, ...] = (b"\t\x00\x00\x00\x00\x00\x00\xf0?",)) -> bytes:
    """TFRecord framing as TensorBoard writes it (the CRC-32C is checked against its standard
    check value in test_folders.py)."""
    from pytest_kpmodel.security.inert import _masked_crc32c

    out = b""
    for p in payloads:
        n = struct.pack("<Q", len(p))
        out += n + struct.pack("<I", _masked_crc32c(n)) + p + struct.pack("<I", _masked_crc32c(p))
    return out


COCO_NAMES = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck"]
KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder"]


def make_model_folder(root: Path) -> Path:
    """Write the folder; returns it."""
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from sec_payloads import torch_zip_bytes

    root.mkdir(parents=True, exist_ok=True)
    (root / "model.pth").write_bytes(torch_zip_bytes())
    save_file({"w": torch.ones(2, 3)}, str(root / "model.safetensors"))
    (root / "kpmodel.toml").write_text(
        'schema = 1\n[model]\nname = "kp"\nformat = "pytorch"\nweights = "model.pth"\n'
    )
    (root / "config.json").write_text(
        json.dumps({"num_classes": 2, "num_keypoints": 17, "min_size": 800, "anchor_sizes": [32]})
    )
    (root / "labels.txt").write_text("\n".join(COCO_NAMES) + "\n")
    (root / "keypoints.json").write_text(json.dumps({"names": KEYPOINTS, "flip_pairs": [[1, 2]]}))
    tokenizer = {"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}}
    (root / "tokenizer.json").write_text(json.dumps(tokenizer))
    (root / "vocab.txt").write_text("[PAD]\n[UNK]\nperson\nkeypoint\n")
    (root / "merges.txt").write_text("#version: 0.2\np e\nk e\n")
    (root / "args.yaml").write_text("task: pose\nmode: train\nimgsz: 384\nkpt_shape: [17, 3]\n")
    (root / "README.md").write_text("# kp model\n\nA keypoint model. | metric | value |\n")
    (root / "LICENSE").write_text("Apache License\nVersion 2.0, January 2004\n")
    (root / "results.csv").write_text("epoch,loss,kp_ap\n1,2.5,0.1\n2,1.9,0.2\n")
    (root / "train.log").write_text("\x1b[32mINFO\x1b[0m epoch 1 loss 2.5\r\n\tdone\n")
    (root / "loss.png").write_bytes(png_bytes())
    (root / "val_batch0.jpg").write_bytes(jpeg_bytes())
    (root / "anchors.npy").write_bytes(npy_bytes(np.arange(12, dtype=np.float32).reshape(3, 4)))
    (root / "stats.npz").write_bytes(npz_bytes(mean=np.zeros(3), counts=np.arange(4)))
    (root / "stats_c.npz").write_bytes(npz_bytes(True, mean=np.ones((2, 2), np.float16)))
    (root / "empty.txt").write_bytes(b"")
    (root / "events.out.tfevents.1700000000.host").write_bytes(
        tfevents_bytes((b"\t\x00\x00\x00\x00\x00\x00\xf0?\x1a\rbrain.Event:2", b"x" * 300))
    )
    (root / "metrics.json").write_text('{"iteration": 19, "loss": 2.5}\n{"iteration": 39}\n')
    sub = root / "onnx"
    sub.mkdir(exist_ok=True)
    _onnx_with_external_data(sub)
    return root


def _onnx_with_external_data(folder: Path) -> None:
    try:
        from onnx import TensorProto, helper
    except ImportError:  # pragma: no cover - onnx is a dev requirement
        return
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "model.onnx.data"), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = key, value
    node = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    # raw float32 bytes: no format of their own; covered by the model's external-data check
    (folder / "model.onnx.data").write_bytes(struct.pack("<4f", 1.0, 2.0, 3.0, 4.0))
