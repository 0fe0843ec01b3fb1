"""`modelspec train` under mpirun or srun: which process leads, and how a failing rank ends the job.

Rank 0 leads: it alone prints and writes the run folder. Inside the session any exception on
any rank ends the whole job with MPI_Abort after one line naming the rank and the cause, so no
rank is left waiting in a collective. Errors every rank meets together (a NaN loss, ranks that
diverged: `TrainingError`) are worded once, by rank 0.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from rich.console import Console

# How long a rank other than 0 leaves rank 0 to report an error all ranks met, before it
# reports its own and ends the job itself.
LEAD_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Role:
    """This process's part in the run: `lead` prints and writes."""

    lead: bool = True
    rank: int = 0
    size: int = 1
    description: str = ""


def launched_follower() -> bool:
    """A rank other than 0 of a launcher (read from its environment, without loading MPI)."""
    from engine.distributed import launch

    return launch.world_size() > 1 and launch.world_rank() != 0


@contextlib.contextmanager
def session(
    fit_section: Mapping[str, Any],
    err: Console,
    exit_code: Callable[[BaseException], int | None],
) -> Iterator[Role]:
    """The run's role; data-parallel when the spec and the launcher ask for it.

    `exit_code(exc)` is the exit code of an error a user can fix, None for any other."""
    from engine.config.distributed import DistributedConfig
    from engine.distributed import check_batch_size, data_parallel, launch, wanted

    config = DistributedConfig.model_validate(fit_section.get("distributed") or {})
    if not wanted(config):
        yield Role()
        return
    check_batch_size(int(fit_section.get("batch_size") or 32), launch.world_size())
    with data_parallel(config.check_weights, config.bucket_mb) as dp:
        description = dp.comm.describe()
        try:
            yield Role(dp.rank == 0, dp.rank, dp.size, description)
        except Exception as exc:
            _end_job(dp.comm, exc, err, exit_code(exc))


def _end_job(comm: Any, exc: BaseException, err: Console, code: int | None) -> NoReturn:
    from engine.train.errors import TrainingError

    if isinstance(exc, TrainingError) and comm.rank != 0:
        time.sleep(LEAD_GRACE_SECONDS)  # rank 0 met it too and ends the job with its message
    where = "" if comm.rank == 0 else f"rank {comm.rank} of {comm.size}: "
    if code is None:
        err.print(traceback.format_exc(), highlight=False, markup=False, soft_wrap=True)
        message = f"error: {where or f'rank 0 of {comm.size}: '}{type(exc).__name__}: {exc}"
    else:
        message = f"error: {where}{exc}"
    err.print(message, highlight=False, markup=False, soft_wrap=True)
    comm.abort(code or 1)
    raise SystemExit(code or 1)  # not reached: MPI_Abort ends this process
