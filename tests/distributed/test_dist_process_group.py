"""A one-rank group: every collective is a local call."""

from __future__ import annotations

from pytest_kpmodel.distributed.environment import DistEnv
from pytest_kpmodel.distributed.process_group import Group


def test_one_rank_group_is_local():
    g = Group(DistEnv(), "cpu")
    assert not g.enabled and g.is_main and g.shard(5, 2) == [0, 1, 2, 3, 4]
    assert g.on_main("x", lambda: 42) == 42
    assert g.gather_outcomes("x", lambda: b"ab") == [b"ab"]
    assert g.all_gather_object({"a": 1}) == [{"a": 1}] and g.broadcast_object(3) == 3
    g.agree("anything")  # no-op
