"""How this process was launched: world size and rank from the launcher's environment.

Read without importing mpi4py, so a single process never loads MPI. Open MPI, MPICH (Hydra),
MVAPICH, PMIx launchers and Slurm's srun each export their own names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

_SIZE_KEYS = (
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "PMIX_SIZE",
    "MV2_COMM_WORLD_SIZE",
    "SLURM_STEP_NUM_TASKS",
)
_RANK_KEYS = (
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "PMIX_RANK",
    "MV2_COMM_WORLD_RANK",
    "SLURM_PROCID",
)


def _first_int(keys: tuple[str, ...], env: Mapping[str, str], default: int) -> int:
    for key in keys:
        value = env.get(key, "")
        if value.isdecimal():
            return int(value)
    return default


def world_size(env: Mapping[str, str] | None = None) -> int:
    """How many processes the launcher started (1 when started without one)."""
    return max(1, _first_int(_SIZE_KEYS, os.environ if env is None else env, 1))


def world_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's rank among them (0 when started without a launcher)."""
    return _first_int(_RANK_KEYS, os.environ if env is None else env, 0)


def local_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's rank on its own machine (which GPU it takes)."""
    keys = (
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "MV2_COMM_WORLD_LOCAL_RANK",
        "SLURM_LOCALID",
    )
    return _first_int(keys, os.environ if env is None else env, 0)


def mpirun_command(processes: int, mpirun: str = "mpirun") -> list[str]:
    """An mpirun line for `processes` ranks on this machine, whichever MPI provides it: Open MPI
    wants --oversubscribe beyond its core count and refuses root without a flag; MPICH wants
    neither."""
    import subprocess

    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True, check=False)
    command = [mpirun, "-n", str(processes)]
    if "Open MPI" in version.stdout + version.stderr:
        command.append("--oversubscribe")
        if os.geteuid() == 0:
            command.append("--allow-run-as-root")
    return command
