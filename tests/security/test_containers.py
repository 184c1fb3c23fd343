"""Container tricks (zip, legacy, tar, safetensors, ONNX, TorchScript): each one flagged."""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from sec_payloads import (
    EMPTY_DICT,
    PROTO2,
    bu,
    evil_pickle,
    glob,
    k,
    legacy_parts,
    rezip,
    safetensors_bytes,
    torch_legacy_bytes,
    torch_zip_bytes,
    zip_members,
)

from pytest_kpmodel.security import detect_kind, scan_bytes, scan_path


def _codes(report) -> set[str]:
    return {f.details["code"] for f in report.findings}


def _scan(tmp_path: Path, data: bytes, name: str = "model.pt", **kw):
    p = tmp_path / name
    p.write_bytes(data)
    return scan_path(p, **kw)


@pytest.fixture(scope="module")
def zdata() -> bytes:
    return torch_zip_bytes()


def _local_header(data: bytes, suffix: str) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        (info,) = [i for i in z.infolist() if i.filename.endswith(suffix)]
    return info.header_offset


def _central_header(data: bytes, suffix: str) -> int:
    i = data.rfind(b"PK\x01\x02" + b"\x00" * 0)
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        nlen = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + nlen].decode().endswith(suffix):
            return pos
        pos = data.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(i)


# --------------------------------------------------------------------------- zip


def test_real_and_rezipped_archives_are_clean(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    assert _scan(tmp_path, zdata).verdict == "clean"
    # the same members written by Python's zipfile (no descriptors, no padding) are fine too
    assert _scan(tmp_path, rezip(zip_members(zdata)), "b.pt").verdict == "clean"


def test_bad_crc(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    data = bytearray(zdata)
    h = _local_header(zdata, "data/0")
    nlen, xlen = struct.unpack_from("<HH", data, h + 26)
    data[h + 30 + nlen + xlen + 3] ^= 0xFF  # one byte of tensor data
    r = _scan(tmp_path, bytes(data))
    # the bytes torch reads are the bytes scanned; nothing runs, but the archive was modified
    assert "crc" in _codes(r) and r.verdict == "unsupported"


def test_local_central_name_mismatch(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    data = bytearray(zdata)
    h = _local_header(zdata, "data.pkl")
    nlen = struct.unpack_from("<H", data, h + 26)[0]
    name = bytes(data[h + 30 : h + 30 + nlen])
    data[h + 30 : h + 30 + nlen] = name.replace(b"data.pkl", b"evil.pkl")
    assert "name-mismatch" in _codes(_scan(tmp_path, bytes(data)))


@pytest.mark.parametrize("extra", [b"JUNK" * 8, b"\x00" * 512], ids=["junk", "zeros"])
def test_prepended_data(tmp_path: Path, zdata: bytes, extra: bytes, no_unpickle) -> None:
    r = _scan(tmp_path, extra + zdata)
    assert r.verdict != "clean" and "prepended-data" in _codes(r)


@pytest.mark.parametrize("extra", [b"tail", evil_pickle("/nonexistent/m")], ids=["junk", "pickle"])
def test_appended_data(tmp_path: Path, zdata: bytes, extra: bytes, no_unpickle) -> None:
    r = _scan(tmp_path, zdata + extra)
    # readers may disagree on such an archive; an appended pickle is scanned and named
    assert "appended-data" in _codes(r)
    if extra.startswith(b"\x80"):
        assert r.verdict == "unsafe" and "builtins.open" in r.globals
    else:
        assert r.verdict == "unverifiable"


def test_duplicate_names(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    members = zip_members(zdata)
    pkl = next(n for n, _ in members if n.endswith("data.pkl"))
    r = _scan(tmp_path, rezip(members + [(pkl, evil_pickle(str(tmp_path / "m")))]))
    assert "duplicate" in _codes(r) and r.verdict == "unsafe"
    assert not (tmp_path / "m").exists()


def test_zip_inside_zip(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    members = zip_members(zdata)
    inner = rezip([("x/data.pkl", evil_pickle("/nonexistent/m"))])
    members = [(n, inner if n.endswith("data/0") else d) for n, d in members]
    r = _scan(tmp_path, rezip(members))
    assert "nested-archive" in _codes(r) and r.verdict == "unsafe"


def test_encrypted_flag(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    data = bytearray(zdata)
    for off, pos in (
        (_local_header(zdata, "data.pkl"), 6),
        (_central_header(zdata, "data.pkl"), 8),
    ):
        data[off + pos] |= 0x01
    assert "encrypted" in _codes(_scan(tmp_path, bytes(data)))


@pytest.mark.parametrize(
    ("extra_name", "code"),
    [("evil.py", "member-name"), ("data/x.so", "member-name"), ("../../etc/x", "name")],
)
def test_unexpected_member_names(
    tmp_path: Path, zdata: bytes, extra_name: str, code: str, no_unpickle
) -> None:
    members = zip_members(zdata)
    top = members[0][0].split("/")[0]
    r = _scan(tmp_path, rezip(members + [(f"{top}/{extra_name}", b"x")]))
    assert code in _codes(r) and r.verdict != "clean"


def test_two_top_folders(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    r = _scan(tmp_path, rezip(zip_members(zdata) + [("other/version", b"3\n")]))
    assert "top-folder" in _codes(r)


def test_compressed_member(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in zip_members(zdata):
            z.writestr(n, d, compress_type=zipfile.ZIP_DEFLATED if n.endswith(".pkl") else 0)
    assert "compressed" in _codes(_scan(tmp_path, buf.getvalue()))


def test_trailing_pickle_inside_data_pkl(tmp_path: Path, zdata: bytes, no_unpickle) -> None:
    members = [
        (n, d + evil_pickle("/nonexistent/m") if n.endswith("data.pkl") else d)
        for n, d in zip_members(zdata)
    ]
    assert "trailing-data" in _codes(_scan(tmp_path, rezip(members)))


def _tensor_pkl(offset: int, size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> bytes:
    def tup(xs: tuple[int, ...]) -> bytes:
        return b"(" + b"".join(k(x) for x in xs) + b"t"

    storage = (
        b"("
        + bu("storage")
        + glob("torch", "FloatStorage")
        + bu("0")
        + bu("cpu")
        + k(numel)
        + b"tQ"
    )
    hooks = glob("collections", "OrderedDict") + b")R"
    rebuild = (
        glob("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage
        + k(offset)
        + tup(size)
        + tup(stride)
        + b"\x89"
        + hooks
        + b"tR"
    )
    return PROTO2 + EMPTY_DICT + bu("w") + rebuild + b"s."


def _archive(pkl: bytes, storages: dict[str, bytes]) -> bytes:
    return rezip(
        [("m/data.pkl", pkl), ("m/version", b"3\n")]
        + [(f"m/data/{key}", d) for key, d in storages.items()]
    )


def test_tensor_records_in_bounds(tmp_path: Path, no_unpickle) -> None:
    ok = _archive(_tensor_pkl(1, (3,), (1,), 4), {"0": b"\x00" * 16})
    assert _scan(tmp_path, ok).verdict == "clean"


@pytest.mark.parametrize(
    ("pkl", "storages", "code"),
    [
        (_tensor_pkl(2, (3,), (1,), 4), {"0": b"\x00" * 16}, "tensor-bounds"),
        (_tensor_pkl(0, (2, 3), (4, 1), 4), {"0": b"\x00" * 16}, "tensor-bounds"),
        (_tensor_pkl(0, (4,), (1,), 4), {"0": b"\x00" * 12}, "storage-size"),
        (_tensor_pkl(0, (4,), (1,), 4), {}, "storage-missing"),
        (
            _tensor_pkl(0, (4,), (1,), 4),
            {"0": b"\x00" * 16, "7": b"hidden"},
            "storage-unreferenced",
        ),
        (_tensor_pkl(0, (4, 1), (1,), 4), {"0": b"\x00" * 16}, "call-args"),
    ],
    ids=["offset", "stride", "size", "missing", "unreferenced", "rank"],
)
def test_tensor_records_checked(
    tmp_path: Path, pkl: bytes, storages: dict[str, bytes], code: str, no_unpickle
) -> None:
    r = _scan(tmp_path, _archive(pkl, storages))
    # a tensor outside its storage is unsafe; a missing or extra storage only unsupported
    label = "unsupported" if code in ("storage-missing", "storage-unreferenced") else "unsafe"
    assert code in _codes(r) and r.verdict == label, [f.message for f in r.findings]


# --------------------------------------------------------------------------- legacy, tar


def test_legacy_tampering(tmp_path: Path, no_unpickle) -> None:
    data = torch_legacy_bytes()
    assert _scan(tmp_path, data).verdict == "clean"
    assert "legacy-truncated" in _codes(_scan(tmp_path, data[:-5], "t.pt"))
    parts = legacy_parts(data)
    import pickle as real_pickle  # only to *write* a tampered key list

    parts[4] = real_pickle.dumps(["1", "2"], protocol=2)
    assert "legacy-keys" in _codes(_scan(tmp_path, b"".join(parts), "k.pt"))


def test_legacy_tar_rejected(tmp_path: Path, no_unpickle) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, payload in (
            ("sys_info", b"\x80\x02}q\x00."),
            ("pickle", evil_pickle(str(tmp_path / "m"))),
            ("storages", b"\x80\x02K\x00."),
            ("tensors", b"\x80\x02K\x00."),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    r = _scan(tmp_path, buf.getvalue())
    assert r.kind == "torch-tar" and r.verdict == "unsafe"
    assert {"legacy-tar", "disallowed-global"} <= _codes(r)


# --------------------------------------------------------------------------- safetensors


def _st(header: dict, data: bytes) -> bytes:
    return safetensors_bytes(header, data)


def test_real_safetensors_clean(tmp_path: Path, no_unpickle) -> None:
    import torch
    from safetensors.torch import save

    data = save(
        {"a": torch.zeros(3, 4), "b": torch.ones(2, dtype=torch.bfloat16), "c": torch.zeros(0)},
        metadata={"k": "v"},
    )
    r = _scan(tmp_path, data, "weights.pt")  # extension is irrelevant
    assert r.kind == "safetensors" and r.verdict == "clean" and r.tensors == 3


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (
            _st(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                },
                b"\x00" * 12,
            ),
            "overlap",
        ),
        (
            _st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\x00" * 8),
            "offsets",
        ),
        (_st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\x00" * 12), "gap"),
        (
            _st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 12),
            "trailing-data",
        ),
        (_st({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8), "size"),
        (
            _st({"a": {"dtype": "PICKLE", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8),
            "dtype",
        ),
        (_st({"__metadata__": {"k": 1}}, b""), "metadata"),
        (
            _st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1}}, b"\x00" * 8),
            "entry",
        ),
        (struct.pack("<Q", 1 << 40) + b"{}", "limit-max-header"),
        (struct.pack("<Q", 4096) + b'{"a": 1}', "header-bounds"),
        (struct.pack("<Q", 16) + b'{"a":1, "a":2}  ', "duplicate-key"),
        (struct.pack("<Q", 8) + b'{"a":NaN', "header-json"),
    ],
    ids=[
        "overlap",
        "out-of-bounds",
        "gap",
        "trailing",
        "size",
        "dtype",
        "metadata",
        "entry",
        "giant-header",
        "header-past-eof",
        "duplicate-key",
        "bad-json",
    ],
)
def test_safetensors_tricks(tmp_path: Path, raw: bytes, code: str, no_unpickle) -> None:
    r = _scan(tmp_path, raw, "model.safetensors")
    assert r.kind == "safetensors"
    assert code in _codes(r) and not r.ok, [f.message for f in r.findings]


def test_kind_by_content_not_extension(tmp_path: Path, zdata: bytes) -> None:
    (tmp_path / "a.safetensors").write_bytes(zdata)
    (tmp_path / "b.onnx").write_bytes(evil_pickle("/nonexistent/m"))
    assert detect_kind(tmp_path / "a.safetensors") == "zip"
    assert scan_path(tmp_path / "a.safetensors").kind == "torch-zip"
    assert scan_path(tmp_path / "b.onnx").kind == "pickle"


# --------------------------------------------------------------------------- ONNX

onnx = pytest.importorskip("onnx")


def _onnx_model(tmp_path: Path, location: str | None, domain: str = "") -> Path:
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    if location is not None:
        w.ClearField("float_data")
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "16")):
            e = w.external_data.add()
            e.key, e.value = key, value
    node = helper.make_node("Add" if not domain else "MyOp", ["x", "w"], ["y"], domain=domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [w],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    p = tmp_path / "model.onnx"
    p.write_bytes(model.SerializeToString())
    return p


def test_onnx_clean_with_external_data(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\x00" * 16)
    r = scan_path(_onnx_model(tmp_path, "w.bin"))
    assert r.kind == "onnx" and r.verdict == "clean", [f.message for f in r.findings]


@pytest.mark.parametrize(
    "location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin", "link.bin"]
)
def test_onnx_external_data_escaping(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 16)
    os.symlink(tmp_path / "secret.bin", folder / "link.bin")
    r = scan_path(_onnx_model(folder, location))
    assert "external-escape" in _codes(r) and r.verdict == "unsafe"


def test_onnx_external_data_missing_or_short(tmp_path: Path) -> None:
    assert "external-missing" in _codes(scan_path(_onnx_model(tmp_path, "nope.bin")))
    (tmp_path / "short.bin").write_bytes(b"\x00" * 4)
    assert "external-bounds" in _codes(scan_path(_onnx_model(tmp_path, "short.bin")))


def test_onnx_custom_domains(tmp_path: Path) -> None:
    r = scan_path(_onnx_model(tmp_path, None, domain="com.evil"))
    assert "custom-domain" in _codes(r) and r.verdict == "unsafe"
    assert scan_path(_onnx_model(tmp_path, None, domain="com.evil"), allow_code=True).ok
    r = scan_path(_onnx_model(tmp_path, None, domain="com.microsoft"))
    assert r.ok and "custom-domain" in _codes(r)


# --------------------------------------------------------------------------- TorchScript


def test_torchscript_is_code(tmp_path: Path) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    p = tmp_path / "ts.pt"
    m.save(str(p))
    r = scan_path(p)
    assert r.kind == "torchscript" and r.verdict == "unsafe"
    assert "torchscript" in _codes(r)
    allowed = scan_path(p, allow_code=True)
    assert allowed.ok, [f.message for f in allowed.findings]


def test_scan_bytes_json_roundtrip(zdata: bytes) -> None:
    r = scan_bytes(zdata)
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["verdict"] == "clean" and doc["kind"] == "torch-zip" and doc["tensors"] == 3


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    r = scan_path(fifo)
    assert r.kind == "not-a-file" and r.verdict == "unverifiable"


def test_torch_export_archive(tmp_path: Path, no_unpickle) -> None:
    import torch

    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    ep = torch.export.export(m, (torch.randn(1, 3, 8, 8),))
    p = tmp_path / "m.pt2"
    torch.export.save(ep, p)
    r = scan_path(p)
    assert r.kind == "torch-export" and r.verdict == "clean", [f.message for f in r.findings]
    # a nested torch file (sample inputs) with a payload: scanned recursively
    marker = tmp_path / "marker"
    evil = rezip([("archive/data.pkl", evil_pickle(str(marker))), ("archive/version", b"3\n")])
    members = [(n, evil if "sample_inputs" in n else d) for n, d in zip_members(p.read_bytes())]
    r = _scan(tmp_path, rezip(members), "evil.pt2")
    assert r.verdict == "unsafe" and "disallowed-global" in _codes(r)
    (f,) = [f for f in r.findings if f.details["code"] == "disallowed-global"]
    assert "sample_inputs" in f.details["member"]
    assert not marker.exists()
