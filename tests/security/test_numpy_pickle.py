"""Plain pickles of numpy arrays (detectron2's .pkl): scanned against the numpy reconstruction
profile, loaded only by the restricted unpickler."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from pytest_kpmodel.errors import RefusedToLoad
from pytest_kpmodel.security import scan_path
from pytest_kpmodel.security.numpy_pickle import NAMES, _Unpickler, load_numpy_pickle

ARRAYS = {
    "f4": np.arange(6, dtype=np.float32).reshape(2, 3),
    "big": np.random.default_rng(0).random((300, 300)).astype(np.float32),
    "f8_fortran": np.asfortranarray(np.ones((2, 3))),
    "empty": np.zeros((0, 4), np.float32),
    "f2": np.array([1.5, -2], np.float16),
    "i8": np.array([1, 2, 3], np.int64),
    "u1": np.array([0, 255], np.uint8),
    "b1": np.array([True, False]),
    "c8": np.array([1 + 2j], np.complex64),
    "big_endian": np.array([1.0, 2.0], ">f4"),
}


def _write(tmp_path: Path, obj, protocol: int = 4) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def _messages(report) -> list[str]:
    return [f.message for f in report.findings]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_arrays_of_every_plain_dtype_round_trip(tmp_path, protocol):
    obj = {"model": ARRAYS, "__author__": "x", "matching_heuristics": True, "s": np.float32(2.5)}
    path = _write(tmp_path, obj, protocol)
    report = scan_path(path)
    assert (report.kind, report.verdict) == ("numpy-pickle", "clean"), _messages(report)
    assert set(report.globals) <= NAMES
    assert report.tensors == len(ARRAYS)
    out = load_numpy_pickle(path, report)
    ref = pickle.loads(path.read_bytes(), encoding="latin1")  # our own file: what numpy makes
    for k, v in ARRAYS.items():
        assert out["model"][k].dtype == ref["model"][k].dtype, k
        assert np.array_equal(out["model"][k], v), k
    assert out["s"] == np.float32(2.5) and out["matching_heuristics"] is True


def _py2_pickle(data: bytes) -> bytes:
    """What Python 2's cPickle (protocol 2) writes for {'w': a float32 array of 3}: names under
    numpy.core, byte strings as SHORT_BINSTRING / BINSTRING (read back with encoding='latin1'),
    dtype(spec, 0, 1) with ints."""

    def sbs(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b

    return b"".join(
        [
            b"\x80\x02}q\x00",
            sbs(b"w"),
            b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85",
            sbs(b"b"),
            b"\x87Rq\x03(K\x01K\x03\x85cnumpy\ndtype\nq\x04",
            sbs(b"f4"),
            b"K\x00K\x01\x87Rq\x05(K\x03",
            sbs(b"<"),
            b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89",
            b"T" + struct.pack("<i", len(data)) + data,
            b"tbs.",
        ]
    )


def test_python2_byte_strings_are_read_as_latin1(tmp_path):
    body = _py2_pickle(np.array([1.0, 2.0, 3.0], np.float32).tobytes())
    path = tmp_path / "model.pkl"
    path.write_bytes(body)
    assert pickle.loads(body, encoding="latin1")["w"].tolist() == [1.0, 2.0, 3.0]
    report = scan_path(path)
    assert (report.kind, report.verdict) == ("numpy-pickle", "clean"), _messages(report)
    assert load_numpy_pickle(path, report)["w"].tolist() == [1.0, 2.0, 3.0]


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_foreign_global_is_named(tmp_path, protocol):
    path = _write(tmp_path, {"model": {"w": np.ones(2)}, "x": _System(tmp_path / "ran")}, protocol)
    report = scan_path(path)
    assert report.kind == "numpy-pickle" and report.verdict == "unsafe"
    with pytest.raises(RefusedToLoad, match=r"imports posix.system, which is not on"):
        load_numpy_pickle(path, report)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("array", "text"),
    [
        (np.array(["a"], dtype=object), "'O8' is not a plain numeric dtype"),
        (np.array(["abc"]), "'U3' is not a plain numeric dtype"),
        (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "'V8' is not a plain numeric dtype"),
        (np.array(["2020-01-01"], dtype="M8[D]"), "'M8' is not a plain numeric dtype"),
    ],
)
def test_dtypes_that_are_not_weights_are_refused(tmp_path, array, text):
    report = scan_path(_write(tmp_path, {"w": array}))
    assert report.verdict == "unsafe"
    assert any(text in m for m in _messages(report)), _messages(report)


def test_data_that_does_not_fill_the_array_is_refused(tmp_path):
    body = pickle.dumps({"w": np.zeros(4, np.float32)}, protocol=3)
    data = np.zeros(4, np.float32).tobytes()
    body = body.replace(b"C\x10" + data, b"C\x0c" + data[:12])
    report = scan_path(_write_raw(tmp_path, body))
    assert any("12 bytes of data for 4 items of 4 bytes" in m for m in _messages(report))


def _write_raw(tmp_path: Path, body: bytes) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(body)
    return path


def test_appended_pickle_is_refused(tmp_path):
    body = pickle.dumps({"w": np.ones(2)}, protocol=4) + pickle.dumps(_System(tmp_path / "x"))
    report = scan_path(_write_raw(tmp_path, body))
    assert report.verdict != "clean"
    assert any("after the pickle's STOP" in m for m in _messages(report))


def test_the_unpickler_itself_hands_out_only_numpy_reconstruction(tmp_path):
    import io

    body = pickle.dumps(_System(tmp_path / "ran"), protocol=2)
    with pytest.raises(RefusedToLoad, match=r"imports posix.system, which is not a numpy"):
        _Unpickler(io.BytesIO(body), "x.pkl").load()
    assert not (tmp_path / "ran").exists()


def test_a_report_for_another_file_or_a_changed_file_is_refused(tmp_path):
    path = _write(tmp_path, {"w": np.ones(2)})
    report = scan_path(path)
    other = tmp_path / "other.pkl"
    other.write_bytes(path.read_bytes())
    with pytest.raises(RefusedToLoad, match="the scan report is for"):
        load_numpy_pickle(other, report)
    path.write_bytes(pickle.dumps({"w": np.ones(3)}, protocol=4))
    with pytest.raises(RefusedToLoad, match="changed since it was scanned"):
        load_numpy_pickle(path, report)


def test_torch_files_are_not_numpy_pickles(tmp_path):
    import torch

    path = tmp_path / "m.pt"
    torch.save({"w": torch.ones(2)}, path)
    report = scan_path(path)
    with pytest.raises(RefusedToLoad, match="not a plain pickle of numpy arrays"):
        load_numpy_pickle(path, report)
