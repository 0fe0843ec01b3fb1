"""The spec's `fit.distributed` section: whether and how a run is data-parallel over MPI ranks."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeFloat

from engine.config.base import SpecConfig


class DistributedConfig(SpecConfig):
    """`enabled`: "auto" is data-parallel exactly when launched with more than one process
    (mpirun, srun); true forces it (one process becomes a world of one, mpi4py required); false
    makes every launched process train alone, as one process would.
    `check_weights`: compare a checksum of every weight across ranks after each epoch and stop
    with an error if any rank differs.
    `bucket_mb`: the gradient is summed in buckets of at least this many MiB, each started while
    the backward pass computes the layers before it (PyTorch DDP's default, 25); 0 sums the
    whole buffer in one Allreduce after the backward pass."""

    enabled: Literal["auto"] | bool = "auto"
    check_weights: bool = True
    bucket_mb: NonNegativeFloat = 25.0
