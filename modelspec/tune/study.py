"""The Optuna study behind a search: its storage, sampler, pruner and trial budget.

Storage is a database so that a study outlives its process: SQLite in the run folder by default
(a killed search resumes where it stopped), or any URL Optuna's RDB storage takes
(`postgresql://...`), which many processes or machines can share. The sampler is seeded with
the spec's seed, so sequential searches of the same spec try the same values in the same order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from modelspec.schema.tune import Direction
from modelspec.tune import space

STUDY_FILE = "study.db"
DEFAULT_TRIALS = 20
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
OPEN_ATTEMPTS = 5
# Any fixed number: the PostgreSQL advisory lock every modelspec worker takes to open a study.
SCHEMA_LOCK = 0x6D6F64656C


def storage(url: str | None, out: Path) -> optuna.storages.RDBStorage:
    """The study's database: `url`, or SQLite in the run folder."""
    url = url or f"sqlite:///{(out / STUDY_FILE).resolve()}"
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Workers sharing one file wait for each other's writes instead of failing at once.
        kwargs = {"connect_args": {"timeout": 60}}
    # No heartbeat: its thread outlives a Ctrl-C that lands between Optuna's steps, and the
    # budget counts finished trials only, so a killed worker's trial (left "running") costs none.
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _grid(parameters: Mapping[str, Any], seed: int | None) -> optuna.samplers.BaseSampler:
    grid = {path: space.grid(p) for path, p in parameters.items()}
    return optuna.samplers.GridSampler(grid, seed=seed)  # type: ignore[arg-type]


SAMPLERS: dict[str, Callable[[Mapping[str, Any], int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda _, seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda _, seed: optuna.samplers.RandomSampler(seed=seed),
    "grid": _grid,
}

PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "none": optuna.pruners.NopPruner,
}


def open_study(
    name: str,
    store: optuna.storages.RDBStorage,
    tune: Mapping[str, Any],
    direction: Direction,
    seed: int | None,
) -> optuna.Study:
    """Create the study, or load it when this storage already has one of that name."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(
        study_name=name,
        storage=store,
        sampler=SAMPLERS[tune.get("sampler", "tpe")](tune["space"], seed),
        pruner=PRUNERS[tune.get("pruner", "median")](),
        direction=direction,
        load_if_exists=True,
    )


@contextmanager
def _one_at_a_time(url: str | None) -> Iterator[None]:
    """On PostgreSQL, holds a server-wide advisory lock while this worker opens the study.

    Two workers started together both find no tables and both create them; PostgreSQL then
    fails the loser with "relation ... already exists" or a unique violation, depending on who
    commits first. Queued behind the lock, the second worker finds the tables and the study.
    """
    if not (url or "").startswith("postgresql"):
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url or "", poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"SELECT pg_advisory_lock({SCHEMA_LOCK})"))
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text(f"SELECT pg_advisory_unlock({SCHEMA_LOCK})"))
    finally:
        engine.dispose()


def open_shared(
    name: str,
    url: str | None,
    out: Path,
    tune: Mapping[str, Any],
    direction: Direction,
    seed: int | None,
) -> optuna.Study:
    """`open_study`, one worker at a time on PostgreSQL; elsewhere retried when another worker
    is creating the same database at that moment (both try to create its tables; the loser sees
    a constraint error and finds them on retry)."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(OPEN_ATTEMPTS):
        try:
            with _one_at_a_time(url):
                return open_study(name, storage(url, out), tune, direction, seed)
        except (IntegrityError, OperationalError):
            if attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def finished(study: optuna.Study) -> int:
    """Trials that ran to an end (complete, pruned or failed): what the budget counts."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def budget(
    tune: Mapping[str, Any], trials: int | None, timeout: float | None
) -> tuple[int | None, float | None]:
    """(total trials, seconds) from the flags, else the section; 20 trials when neither is set."""
    total = trials if trials is not None else tune.get("n_trials")
    seconds = timeout if timeout is not None else tune.get("timeout")
    if total is None and seconds is None:
        total = DEFAULT_TRIALS
    return total, seconds


def stop_at(total: int) -> optuna.study.MaxTrialsCallback:
    """Stops this worker once the study (all workers together) has `total` finished trials."""
    return optuna.study.MaxTrialsCallback(total, states=FINISHED)
