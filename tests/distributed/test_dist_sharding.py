"""Shards are whole batches of the global order."""

from __future__ import annotations

import pytest

from pytest_kpmodel.distributed.sharding import STRATEGIES, shard_indices


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n", [0, 1, 7, 8, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("batch", [1, 2, 4])
def test_shards_are_whole_batches_of_the_global_order(strategy, n, world, batch):
    shards = [shard_indices(n, world, r, batch_size=batch, strategy=strategy)
              for r in range(world)]  # fmt: skip
    assert sorted(i for s in shards for i in s) == list(range(n))  # a partition
    global_batches = [list(range(b, min(n, b + batch))) for b in range(0, n, batch)]
    for s in shards:
        assert s == sorted(s)
        # Batching the shard by itself reproduces global batches: same padding neighbours.
        local_batches = [s[i : i + batch] for i in range(0, len(s), batch)]
        assert all(b in global_batches for b in local_batches)
    counts = [-(-len(s) // batch) for s in shards]
    assert max(counts) - min(counts) <= 1  # balanced to within one batch
    assert shards == [shard_indices(n, world, r, batch_size=batch, strategy=strategy)
                      for r in range(world)]  # fmt: skip


def test_shard_examples_and_errors():
    assert shard_indices(7, 2, 0, batch_size=2) == [0, 1, 2, 3]
    assert shard_indices(7, 2, 1, batch_size=2) == [4, 5, 6]
    assert shard_indices(7, 2, 1, batch_size=2, strategy="strided") == [2, 3, 6]
    with pytest.raises(ValueError, match="strategy"):
        shard_indices(4, 2, 0, strategy="random")
    with pytest.raises(ValueError, match="rank 2 of world size 2"):
        shard_indices(4, 2, 2)
