"""Predictions between ranks: exact round trips, merged in order."""

from __future__ import annotations

import pytest
import torch
from dist_helpers import make_prediction, same_prediction

from pytest_kpmodel.distributed.environment import DistributedError
from pytest_kpmodel.distributed.wire import merge_shards, pack_predictions, unpack_predictions


def test_predictions_round_trip_exactly_and_merge_in_order():
    items = [
        (10, make_prediction(0, 3)),
        (11, make_prediction(1, 0)),
        (12, make_prediction(2, 2, torch.bfloat16)),
        (13, make_prediction(3, 1, torch.float64)),
    ]
    back, seconds = unpack_predictions(pack_predictions(items, seconds=1.5))
    assert seconds == 1.5 and [k for k, _ in back] == [10, 11, 12, 13]
    assert all(same_prediction(a, b) for (_, a), (_, b) in zip(items, back, strict=True))
    assert unpack_predictions(pack_predictions([])) == ([], 0.0)
    # Two ranks' shards, merged into the global order whatever the rank order.
    merged, s = merge_shards(
        [pack_predictions(items[2:], 2.0), pack_predictions(items[:2], 1.0)], [10, 11, 12, 13]
    )
    assert s == 2.0 and all(same_prediction(a, b) for (_, a), b in zip(items, merged, strict=True))
    with pytest.raises(DistributedError, match="which another rank sent"):
        merge_shards([pack_predictions(items[:2]), pack_predictions(items[1:])],
                     [10, 11, 12, 13])  # fmt: skip
    with pytest.raises(DistributedError, match="do not cover"):
        merge_shards([pack_predictions(items[:2])], [10, 11, 12, 13])
    with pytest.raises(DistributedError, match="unknown format"):
        unpack_predictions(b"\x80\x04pickle")
