"""``kp_bench(...)`` settings: validation names the bad value."""

from __future__ import annotations

import pytest

from pytest_kpmodel.bench.settings import BenchError, BenchSettings


def test_settings_validation_names_the_bad_value():
    assert BenchSettings.from_kwargs(image_size=[64, 96]).image_size == (64, 96)
    for bad, word in [
        ({"batch_size": 0}, "batch_size"),
        ({"precision": "int8"}, "precision"),
        ({"image_size": (64,)}, "image_size"),
        ({"iters": 1.5}, "iters"),
        ({"warmpu": 3}, "warmpu"),
    ]:
        with pytest.raises(BenchError, match=word):
            BenchSettings.from_kwargs(**bad)
