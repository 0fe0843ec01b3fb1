"""Data-parallel training over MPI (and NCCL on CuPy): the communicator behind one interface.

Importing this package loads no MPI: `launch` reads the launcher's environment, and mpi4py is
imported only when a `data_parallel()` block starts.
"""

from engine.distributed.errors import DistributedError
from engine.distributed.session import active, check_batch_size, data_parallel, wanted

__all__ = ["DistributedError", "active", "check_batch_size", "data_parallel", "wanted"]
