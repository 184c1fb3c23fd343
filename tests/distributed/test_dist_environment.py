"""The torchrun and xdist environment, and each process's device, backend and timeout."""

from __future__ import annotations

import pytest
import torch

from pytest_kpmodel.distributed.environment import (
    DistributedError,
    detect,
    is_main_process,
    rank_device,
    xdist_worker_index,
)
from pytest_kpmodel.distributed.process_group import (
    ENV_BACKEND,
    ENV_TIMEOUT,
    default_backend,
    default_timeout,
)

TORCHRUN = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
            "GROUP_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}  # fmt: skip


def test_detect_torchrun_environment():
    env = detect(TORCHRUN)
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size, env.node_rank) == (
        3, 8, 1, 2, 1)  # fmt: skip
    assert (env.master_addr, env.master_port) == ("10.0.0.1", 29500)
    assert env.enabled and not env.is_main
    assert not detect({}).enabled and detect({}).is_main


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WORLD_SIZE": "two"}, "$WORLD_SIZE='two': expected an integer"),
        ({**TORCHRUN, "RANK": "8"}, "$RANK=8: must be in [0, $WORLD_SIZE=8)"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "$MASTER_ADDR/$MASTER_PORT are not set"),
    ],
)
def test_detect_errors_name_the_variable(environ, message):
    with pytest.raises(DistributedError) as info:
        detect(environ)
    assert message in str(info.value)
    assert is_main_process(environ)  # never raises: the first collective reports it


def test_devices_backend_timeout(monkeypatch):
    assert rank_device("cpu", TORCHRUN) == "cpu"
    if not torch.cuda.is_available():
        assert rank_device(None, TORCHRUN) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    # the default device asks torch only where a GPU device node exists: pretend one does
    monkeypatch.setattr("pytest_kpmodel.settings.no_cuda_here", lambda: False)
    assert rank_device("cuda", TORCHRUN) == "cuda:1"  # LOCAL_RANK
    assert rank_device(None, TORCHRUN) == "cuda:1"
    assert rank_device("cuda:3", TORCHRUN) == "cuda:3"  # explicit: honoured
    assert rank_device("cuda", {"PYTEST_XDIST_WORKER": "gw5"}) == "cuda:1"  # 5 % 4
    assert rank_device("cuda", {}) == "cuda"
    with pytest.raises(DistributedError, match="only 4 CUDA device"):
        rank_device("cuda", {**TORCHRUN, "LOCAL_RANK": "6"})
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one GPU shown per process
    assert rank_device("cuda", TORCHRUN) == "cuda:0"
    assert default_backend("cuda:1", {}) == "nccl"
    assert default_backend("cpu", {}) == "gloo"
    assert default_backend("cpu", {ENV_BACKEND: "mpi"}) == "mpi"
    assert default_timeout({}).total_seconds() == 1800
    assert default_timeout({ENV_TIMEOUT: "90"}).total_seconds() == 90
    with pytest.raises(DistributedError, match="KPMODEL_DIST_TIMEOUT"):
        default_timeout({ENV_TIMEOUT: "soon"})


def test_xdist_worker_index(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert xdist_worker_index() == 0
