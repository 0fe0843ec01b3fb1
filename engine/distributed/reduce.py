"""Summing a flat buffer over ranks wherever it lives: host memory, a CUDA device, the fake device.

One interface, `reduce(buffer)` in place, three transports: MPI on host arrays; NCCL through
CuPy's communicator on CuPy arrays (its unique id sent over MPI); and, for a device without
NCCL (the strict fake device in CI), an explicit copy to the host, MPI, and a copy back, which is
what a GPU without CUDA-aware MPI or NCCL would have to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.backend import Backend, backend_of
from engine.distributed.comm import Communicator

Array = Any
Reduce = Callable[[Array], None]


def _host(comm: Communicator, backend: Backend) -> Reduce:
    return comm.allreduce_sum


def _staged(comm: Communicator, backend: Backend) -> Reduce:
    def reduce(buffer: Array) -> None:
        host = np.ascontiguousarray(backend.to_host(buffer))
        comm.allreduce_sum(host)
        buffer[...] = backend.asarray(host)

    return reduce


def _nccl(comm: Communicator, backend: Backend) -> Reduce:
    from cupy.cuda import nccl

    uid = np.zeros(128, np.int8)  # NCCL_UNIQUE_ID_BYTES; CuPy gives it as 128 signed chars
    if comm.rank == 0:
        uid[:] = nccl.get_unique_id()
    comm.broadcast(uid)
    nccl_comm = nccl.NcclCommunicator(comm.size, tuple(int(b) for b in uid), comm.rank)
    kinds = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}
    xp = backend.xp

    def reduce(buffer: Array) -> None:
        stream = xp.cuda.get_current_stream()
        nccl_comm.allReduce(
            buffer.data.ptr,
            buffer.data.ptr,
            buffer.size,
            kinds[np.dtype(buffer.dtype)],
            nccl.NCCL_SUM,
            stream.ptr,
        )

    return reduce


_TRANSPORTS: dict[str, Callable[[Communicator, Backend], Reduce]] = {
    "cpu": _host,
    "gpu": _nccl,
    "fake": _staged,
}


def reducer_for(comm: Communicator, buffer: Array) -> Reduce:
    """The in-place sum over ranks for buffers on `buffer`'s device."""
    backend = backend_of(buffer)
    return _TRANSPORTS.get(backend.name, _staged)(comm, backend)
