"""Fuzzing the scanner: random and mutated pickles/zips/safetensors never crash it, never hang
it, and never make it unpickle (pickle.loads/Unpickler raise during the whole fuzz)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sec_payloads import PICKLE_SAMPLES, safetensors_bytes, torch_legacy_bytes, torch_zip_bytes

from pytest_kpmodel.security import ScanLimits, scan_bytes
from pytest_kpmodel.security.pickle_scan import OPCODES

SETTINGS = settings(
    max_examples=150,
    deadline=None,  # timing asserted below, per example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
LIMITS = ScanLimits(max_ops=20_000)


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    import pickle  # only to *write* seed pickles

    return {
        "zip": torch_zip_bytes(),
        "legacy": torch_legacy_bytes(),
        "st": safetensors_bytes(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "__metadata__": {"k": "v"},
            },
            b"\x00" * 8,
        ),
        "p2": pickle.dumps({"a": [1, 2.5, "x", None, (True, b"z")], "b": {3: 4}}, protocol=2),
        "p4": pickle.dumps({"a": [1, 2.5, "x", frozenset({1})], "b": {3: 4}}, protocol=4),
        "p0": pickle.dumps({"a": [1, 2.5, "x"]}, protocol=0),
        **{s.name: s.build("/nonexistent/marker") for s in PICKLE_SAMPLES[:12]},
    }


def _check(data: bytes) -> None:
    t0 = time.perf_counter()
    report = scan_bytes(data, limits=LIMITS)
    elapsed = time.perf_counter() - t0
    assert report.verdict in ("clean", "unsafe", "unverifiable", "unsupported")
    assert elapsed < 5.0, f"scan took {elapsed:.1f}s on {len(data)} bytes"
    for f in report.findings:
        assert f.check.startswith("security.") and f.message
        assert f.details["code"] != "internal-error", f.message


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_random_bytes(data: bytes, no_unpickle) -> None:
    _check(data)


@SETTINGS
@given(
    data=st.lists(st.tuples(st.sampled_from(sorted(OPCODES)), st.binary(max_size=9)), max_size=200)
)
def test_random_opcode_streams(data: list[tuple[int, bytes]], no_unpickle) -> None:
    _check(b"\x80\x02" + b"".join(bytes([op]) + arg for op, arg in data) + b".")


@st.composite
def mutations(draw: st.DrawFn, seed: bytes) -> bytes:
    buf = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        if kind == "flip":
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            buf[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del buf[i : i + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del buf[i:]
        else:
            j = draw(st.integers(0, len(buf) - 1))
            buf[i:i] = buf[j : j + draw(st.integers(1, 64))]
    return bytes(buf)


@SETTINGS
@given(data=st.data())
def test_mutated_seeds(seeds: dict[str, bytes], data: st.DataObject, no_unpickle) -> None:
    name = data.draw(st.sampled_from(sorted(seeds)))
    _check(data.draw(mutations(seeds[name])))


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(depth=st.integers(1, 5000), width=st.integers(1, 3))
def test_deep_nesting_is_bounded(depth: int, width: int, no_unpickle) -> None:
    data = b"\x80\x02" + (b"(" * width + b"]") * depth + b"."
    _check(data)
