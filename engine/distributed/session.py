"""Which data-parallel run, if any, `fit` takes part in: started from the spec and launcher."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from engine.config.distributed import DistributedConfig
from engine.distributed import launch
from engine.distributed.errors import DistributedError

if TYPE_CHECKING:
    from engine.distributed.replica import DataParallel

_active: list[DataParallel] = []


def wanted(config: DistributedConfig, size: int | None = None) -> bool:
    """Whether a run is data-parallel: "auto" when launched with more than one process."""
    if config.enabled == "auto":
        return (launch.world_size() if size is None else size) > 1
    return bool(config.enabled)


def active() -> DataParallel | None:
    """The `DataParallel` of the innermost `data_parallel()` block, or None."""
    return _active[-1] if _active else None


@contextlib.contextmanager
def data_parallel(check_weights: bool = True, bucket_mb: float = 25.0) -> Iterator[DataParallel]:
    """Every `fit` in the block trains data-parallel over MPI's world (imports mpi4py); the
    options are `fit.distributed`'s."""
    from engine.distributed.comm import Communicator
    from engine.distributed.replica import DataParallel

    replica = DataParallel(Communicator(), check_weights, int(bucket_mb * 2**20))
    _use_local_gpu()
    _active.append(replica)
    try:
        yield replica
    finally:
        _active.pop()


def check_batch_size(batch_size: int, size: int) -> None:
    """The global batch must split evenly; said before any process loads MPI."""
    if batch_size % size:
        raise DistributedError(
            f"fit.batch_size {batch_size} does not split evenly over {size} ranks; "
            f"use a multiple of {size} (the batch size is global)"
        )


def _use_local_gpu() -> None:
    """On the GPU, each rank of a machine takes its own device (local rank modulo the count)."""
    from engine import backend

    current = backend.current()
    if current.name == "gpu":
        cuda = current.xp.cuda
        cuda.Device(launch.local_rank() % cuda.runtime.getDeviceCount()).use()
