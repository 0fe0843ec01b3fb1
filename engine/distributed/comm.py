"""The MPI world as data-parallel training uses it; the only module that imports mpi4py."""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

import numpy as np

from engine.distributed.errors import DistributedError

ABORT_GRACE_SECONDS = 0.5


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            "data-parallel training needs mpi4py and an MPI library; install the mpi extra: "
            "pip install 'modelspec[mpi]'"
        ) from exc
    return MPI


class Communicator:
    """Collectives on host NumPy arrays over MPI's world communicator.

    Uppercase (buffer) mpi4py calls only: nothing is pickled between ranks.
    """

    def __init__(self) -> None:
        self.mpi = _mpi()
        self.world = self.mpi.COMM_WORLD
        self.rank: int = self.world.Get_rank()
        self.size: int = self.world.Get_size()

    def allreduce_sum(self, array: np.ndarray) -> None:
        """Sum `array` over ranks, in place (every rank gets the same bits)."""
        self.world.Allreduce(self.mpi.IN_PLACE, array, op=self.mpi.SUM)

    def allreduce_max(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        self.world.Allreduce(values, out, op=self.mpi.MAX)
        return out

    def allgather(self, values: np.ndarray) -> np.ndarray:
        """Every rank's `values`, stacked in rank order."""
        out = np.empty((self.size, *values.shape), dtype=values.dtype)
        self.world.Allgather(values, out)
        return out

    def broadcast(self, values: np.ndarray, root: int = 0) -> None:
        self.world.Bcast(values, root=root)

    def abort(self, code: int) -> None:
        """End every rank of the job now (MPI_Abort): a failing rank never leaves others waiting."""
        sys.stdout.flush()
        sys.stderr.flush()
        # Measured under load: without a pause MPICH's launcher sometimes tore the job down
        # before forwarding this rank's last lines, and the error message was lost.
        time.sleep(ABORT_GRACE_SECONDS)
        self.world.Abort(code)

    def describe(self) -> str:
        """Which MPI, and which process on which host each rank is (to match a launcher's
        report of a dead PID to its rank)."""
        host = socket.gethostname().encode()[:63].ljust(64, b"\0")
        me = np.frombuffer(host + os.getpid().to_bytes(8, "little"), dtype=np.uint8)
        every = self.allgather(me.copy())
        ranks = ", ".join(
            f"rank {r} pid {int.from_bytes(row[64:].tobytes(), 'little')} on "
            f"{row[:64].tobytes().rstrip(bytes(1)).decode(errors='replace')}"
            for r, row in enumerate(every)
        )
        library = " ".join(self.mpi.Get_library_version().split("\n")[0].split())
        return f"{library}; {ranks}"
