"""A whole search: the study opened (or resumed), its trials run to the budget, outputs written.

The budget counts the study's finished trials, whoever ran them: a resumed search runs only
what is left, and workers sharing a study stop together once it has enough.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from engine.train.errors import TrainingError
from engine.train.interrupt import StopOnInterrupt
from modelspec.schema.tune import default_direction, default_metric
from modelspec.tune import outputs, study
from modelspec.tune.objective import Search, SearchStopped, TrialFailedError, objective


@dataclass
class Options:
    """The command's flags: each overrides the spec's `tune` section or the default."""

    out: Path
    trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None


@dataclass
class Prepared:
    search: Search
    study: optuna.Study
    total: int | None
    seconds: float | None


def prepare(spec_path: Path, data: dict[str, Any], options: Options) -> Prepared:
    """The search and its study (created, or loaded to resume)."""
    tune = data["tune"]
    metric = tune.get("metric") or default_metric(data.get("compile"))
    direction = tune.get("direction") or default_direction(metric)
    options.out.mkdir(parents=True, exist_ok=True)
    name = options.study or str(data.get("name") or spec_path.stem)
    opened = study.open_shared(
        name, options.storage, options.out, tune, direction, data.get("seed")
    )
    opened.set_user_attr("metric", metric)
    parameters = {path: _with_defaults(p) for path, p in tune["space"].items()}
    search = Search(spec_path, data, parameters, metric, direction, options.out)
    total, seconds = study.budget(tune, options.trials, options.timeout)
    return Prepared(search, opened, total, seconds)


def _with_defaults(parameter: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, dict[str, Any]] = {
        "float": {"log": False, "step": None},
        "int": {"log": False, "step": 1},
    }
    return {**defaults.get(parameter["type"], {}), **parameter}


def run(
    prepared: Prepared, on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]
) -> int:
    """Run this worker's trials; returns how many it ran.

    Ctrl-C or SIGTERM between trials is held until Optuna has stored the trial, then ends the
    search: raised inside Optuna's storage code it would leave a traceback and a half-written
    study. During a trial's training, fit's own handler stops it after the current step.
    """
    before = len(prepared.study.trials)
    n_trials = None
    with StopOnInterrupt() as stop:
        callbacks = [on_trial, _stop_when_asked(stop)]
        if prepared.total is not None:
            n_trials = prepared.total - study.finished(prepared.study)
            if n_trials <= 0:
                return 0
            callbacks.append(study.stop_at(prepared.total))
        prepared.study.optimize(
            objective(prepared.search, (TrainingError,), stop),
            n_trials=n_trials,
            timeout=prepared.seconds,
            catch=(TrialFailedError,),
            callbacks=callbacks,
        )
    if stop.signum is not None:
        raise SearchStopped(stop.signum)
    return len(prepared.study.trials) - before


def _stop_when_asked(
    stop: StopOnInterrupt,
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    def check(opened: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if stop.requested:
            opened.stop()

    return check


def finish(prepared: Prepared) -> outputs.Written:
    search = prepared.search
    return outputs.write_outputs(
        prepared.study, search.data, list(search.parameters), search.spec_path.parent, search.out
    )
