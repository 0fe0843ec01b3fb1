"""The spec's `fit.distributed` section: whether and how a run is data-parallel over MPI ranks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class DistributedConfig(BaseModel):
    """`enabled`: "auto" is data-parallel exactly when launched with more than one process
    (mpirun, srun); true forces it (one process becomes a world of one, mpi4py required); false
    makes every launched process train alone, as one process would.
    `check_weights`: compare a checksum of every weight across ranks after each epoch and stop
    with an error if any rank differs."""

    model_config = ConfigDict(extra="forbid")
    enabled: Literal["auto"] | bool = "auto"
    check_weights: bool = True
