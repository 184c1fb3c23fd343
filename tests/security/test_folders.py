"""Folders fail closed: every file is scanned by content, recognised as inert data, or fails.

A realistic model folder (weights, card, config, labels, tokenizer, logs, plots, numpy arrays,
an ONNX export with external data) is clean; each malicious or unrecognisable file dropped
into it makes ``kpmodel scan DIR`` exit 1 with that file refused - and its payload named - while
the rest stays clean. The payloads would create a canary file; it never appears.
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from sec_folders import make_model_folder, npy_bytes, npz_bytes, png_bytes, tfevents_bytes
from sec_payloads import evil_pickle, replace_member, torch_zip_bytes

from pytest_kpmodel.cli import main
from pytest_kpmodel.security import scan_path, scan_paths
from pytest_kpmodel.security.scan import scan_folder


class _Open:
    """Pickles as open(canary, "w") (``io.open``, as pickle names it): what every payload here
    would do."""

    def __init__(self, canary: str) -> None:
        self.canary = canary

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.canary, "w"))


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("clean") / "model")


def test_realistic_model_folder_is_clean(clean_folder: Path, capsys, no_unpickle) -> None:
    reports = scan_folder(clean_folder)
    bad = {r.path: [f.message for f in r.failures] for r in reports if not r.ok}
    assert not bad, bad
    kinds = {Path(r.path).name: r.kind for r in reports}
    assert kinds["model.pth"] == "torch-zip" and kinds["model.safetensors"] == "safetensors"
    assert kinds["config.json"] == "json" and kinds["kpmodel.toml"] == "toml"
    assert kinds["loss.png"] == "png" and kinds["val_batch0.jpg"] == "jpeg"
    assert kinds["anchors.npy"] == "npy" and kinds["stats.npz"] == kinds["stats_c.npz"] == "npz"
    assert kinds["labels.txt"] == kinds["train.log"] == kinds["args.yaml"] == "text"
    assert kinds["model.onnx"] == "onnx" and kinds["model.onnx.data"] == "onnx-external-data"
    assert kinds["events.out.tfevents.1700000000.host"] == "tfevents"
    assert kinds["metrics.json"] == "text"  # JSON lines (detectron2's metrics.json)
    assert main(["scan", str(clean_folder)]) == 0
    out = capsys.readouterr().out
    assert f"{len(reports)}/{len(reports)} files clean" in out


def _protocol0_dict(canary: str) -> bytes:
    # the LIST/DICT regression: a protocol-0 pickle whose root is built by DICT
    return pickle.dumps({"classes": ["person"], "hook": _Open(canary)}, protocol=0)


def _text_pickle(canary: str) -> bytes:
    return f"cbuiltins\nopen\n(S'{canary}'\nS'w'\ntR.".encode()


def _object_npy(canary: str) -> bytes:
    import numpy as np

    return npy_bytes(np.array([_Open(canary), 1], dtype=object))


def _object_npz(canary: str) -> bytes:
    import numpy as np

    buf_ok = np.zeros(2)
    arr = np.array([_Open(canary)], dtype=object)
    import io

    out = io.BytesIO()
    np.savez(out, ok=buf_ok, hook=arr)
    return out.getvalue()


def _png_polyglot(canary: str) -> bytes:
    return png_bytes() + evil_pickle(canary)


def _disguised_zip(canary: str) -> bytes:
    return replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(canary))


def _yaml_tag(canary: str) -> bytes:
    return f"model: !!python/object/apply:builtins.open ['{canary}', 'w']\n".encode()


def _elf(canary: str) -> bytes:
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 57


def _sevenzip(canary: str) -> bytes:
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(range(200))


def _gzip(canary: str) -> bytes:
    import gzip

    return gzip.compress(evil_pickle(canary))


# (file name, builder, finding code expected, label, payload name expected)
MALICIOUS: list[tuple[str, Callable[[str], bytes], str, str, str | None]] = [
    # protocol 0 names open by its module: io.open
    ("labels.pkl", _protocol0_dict, "disallowed-global", "unsafe", "io.open"),
    ("classes.pkl", _text_pickle, "disallowed-global", "unsafe", "builtins.open"),
    ("anchors_obj.npy", _object_npy, "npy-object", "unsafe", "io.open"),
    ("stats_obj.npz", _object_npz, "npy-object", "unsafe", "io.open"),
    ("curve.png", _png_polyglot, "trailing-data", "unsafe", "builtins.open"),
    ("tokenizer_config.json", _disguised_zip, "disallowed-global", "unsafe", "builtins.open"),
    ("config.yaml", _yaml_tag, "yaml-python-tag", "unsafe", None),
    ("custom_ops.so", _elf, "binary-code", "unsafe", None),
    ("extra.7z", _sevenzip, "unknown", "unverifiable", None),
    ("weights.pkl.gz", _gzip, "unknown", "unverifiable", None),
    ("helper.py", lambda c: f"open({c!r}, 'w')\n".encode(), "source-code", "unsafe", None),
]


@pytest.mark.parametrize(
    ("name", "build", "code", "label", "payload"), MALICIOUS, ids=[m[0] for m in MALICIOUS]
)
def test_malicious_file_fails_the_folder(
    clean_folder: Path,
    tmp_path: Path,
    name: str,
    build: Callable[[str], bytes],
    code: str,
    label: str,
    payload: str | None,
    capsys,
    no_unpickle,
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(clean_folder, folder)
    canary = tmp_path / "CANARY"
    (folder / name).write_bytes(build(str(canary)))
    reports = scan_paths(folder)
    bad = [r for r in reports if not r.ok]
    assert [Path(r.path).name for r in bad] == [name]
    (r,) = bad
    codes = {f.details["code"] for f in r.findings}
    assert code in codes and r.verdict == label, [f.message for f in r.findings]
    if payload is not None:
        assert payload in r.globals
        named = [f for f in r.failures if f.details.get("name") == payload]
        assert named and all("offset" in f.details for f in named)
    assert main(["scan", str(folder)]) == 1
    assert f"{name}: {label.upper()}" in capsys.readouterr().out
    assert not canary.exists()


def test_symlinks_fail_closed(clean_folder: Path, tmp_path: Path, no_unpickle) -> None:
    folder = tmp_path / "model"
    shutil.copytree(clean_folder, folder, symlinks=True)
    os.symlink(tmp_path / "nowhere", folder / "dangling.bin")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "evil.pkl").write_bytes(evil_pickle(str(tmp_path / "c")))
    os.symlink(tmp_path / "outside", folder / "linked")
    bad = {Path(r.path).name: r for r in scan_folder(folder) if not r.ok}
    assert set(bad) == {"dangling.bin", "linked"}
    assert all(r.verdict == "unverifiable" for r in bad.values())


def test_onnx_external_data_only_covered_by_its_model(clean_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(clean_folder, folder)
    (folder / "onnx" / "model.onnx").unlink()  # the raw bytes now belong to nothing
    bad = [Path(r.path).name for r in scan_folder(folder) if not r.ok]
    assert bad == ["model.onnx.data"]


def test_card_folder_is_scanned_by_kp_security(pytester, tiny_card) -> None:
    folder = pytester.path / "card"
    shutil.copytree(tiny_card.parent, folder)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_security(pickle="strict")
        def test_secure():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={folder / 'kpmodel.toml'}")
    result.assert_outcomes(passed=1)
    canary = pytester.path / "CANARY"
    (folder / "labels.pkl").write_bytes(_protocol0_dict(str(canary)))
    result = pytester.runpytest(f"--kp-model={folder / 'kpmodel.toml'}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*labels.pkl*io.open*not on the allow-list*"])
    assert not canary.exists()


# --------------------------------------------------------------------------- numpy files


def test_numpy_labels(tmp_path: Path, no_unpickle) -> None:
    """Inert arrays named explicitly are unsupported (not weights), never unsafe; object
    arrays are pickles, scanned and named."""
    import numpy as np

    ints = tmp_path / "ints.npz"
    ints.write_bytes(npz_bytes(a=np.arange(5), b=np.zeros((2, 2), np.int8)))
    r = scan_path(ints)
    assert (r.kind, r.verdict) == ("npz", "unsupported"), [f.message for f in r.findings]
    arr = tmp_path / "a.npy"
    arr.write_bytes(npy_bytes(np.ones(3, np.float64)))
    assert scan_path(arr).verdict == "unsupported"
    obj = tmp_path / "o.npy"
    obj.write_bytes(_object_npy(str(tmp_path / "c")))
    r = scan_path(obj)
    assert r.verdict == "unsafe" and "io.open" in r.globals


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d[:-4], "npy-size"),  # truncated data
        (lambda d: d[:8] + struct.pack("<H", 60000) + d[10:], "npy-header"),
        (lambda d: d.replace(b"'descr': '<f4'", b"'descr': __import__('os')"), "npy-header"),
        (lambda d: d + evil_pickle("/nonexistent/c"), "disallowed-global"),
    ],
    ids=["truncated", "header-length", "header-code", "appended-pickle"],
)
def test_npy_tampering(tmp_path: Path, mutate, code: str, no_unpickle) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    p = tmp_path / "x.npy"
    p.write_bytes(mutate(npy_bytes(np.arange(4, dtype="<f4"))))
    r = scan_folder(tmp_path)[0]
    assert code in {f.details["code"] for f in r.findings} and not r.ok


def test_tfevents_framing_is_checked(tmp_path: Path, no_unpickle) -> None:
    from pytest_kpmodel.security import inert

    crc = 0xFFFFFFFF  # CRC-32C's standard check value for b"123456789"
    for b in b"123456789":
        crc = inert._CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    assert crc ^ 0xFFFFFFFF == 0xE3069283
    good = tfevents_bytes((b"abc", b"defg"))
    for name, data, ok in (
        ("good", good, True),
        ("flipped", good[:14] + b"X" + good[15:], False),
        ("truncated", good[:-1], False),
        ("appended", good + evil_pickle(str(tmp_path / "c")), False),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "events.out.tfevents.1").write_bytes(data)
        assert scan_folder(folder)[0].ok == ok, name
