"""One trial: the spec with the trial's values, checked, trained, and scored on validation data.

A trial whose spec does not check (a bad combination of values) or whose training fails (a NaN
loss) is recorded with its reason and skipped: the search goes on. The pruner sees the metric
at the end of every epoch and can stop a trial that is doing worse than the others did by then.
"""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from engine.atomic import atomic_write_bytes
from engine.callbacks import Callback
from engine.train.interrupt import StopOnInterrupt
from modelspec import runs
from modelspec.check import SpecReport, check_document
from modelspec.errors import RunError
from modelspec.load import SourceMap
from modelspec.tune import space

TRIALS_DIR = "trials"
ERROR_ATTR = "error"
PRUNED_ATTR = "pruned_at_epoch"


class TrialFailedError(RuntimeError):
    """This trial cannot be scored (its values make a bad spec, or training diverged)."""


class SearchStopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a trial's training: the search stops too (`signum` says which)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class MetricMissingError(RunError):
    """The tune metric is not one the training logs: every trial would fail the same way."""


@dataclass
class Search:
    """What every trial of one search shares: the spec, where it is, the metric, the output."""

    spec_path: Path
    data: dict[str, Any]
    parameters: dict[str, Any]
    metric: str
    direction: str
    out: Path
    _loaded: dict[str, runs.RunData] = field(default_factory=dict)

    def trial_dir(self, number: int) -> Path:
        return self.out / TRIALS_DIR / f"{number:04d}"

    def run_data(self, report: SpecReport) -> tuple[Any, runs.RunData]:
        """The trial's data (loaded once per distinct data section and model signature)."""
        signature = runs.signature_of(report)
        data = report.data
        key = json.dumps([data.get("data"), repr(signature), data.get("dtype")], default=str)
        if key not in self._loaded:
            config = runs.data_config(data, self.spec_path)
            dtype = str(data.get("dtype", "float32"))
            self._loaded[key] = runs.load_run_data(config, self.spec_path.parent, signature, dtype)
        return signature, self._loaded[key]


def suggest(trial: optuna.Trial, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's value for every path of the search space."""
    values: dict[str, Any] = {}
    for path, p in parameters.items():
        if p["type"] == "categorical":
            values[path] = trial.suggest_categorical(path, p["choices"])
        elif p["type"] == "int":
            values[path] = trial.suggest_int(
                path, p["low"], p["high"], step=p["step"], log=p["log"]
            )
        else:
            values[path] = trial.suggest_float(
                path, p["low"], p["high"], step=p["step"], log=p["log"]
            )
    return values


class PruningCallback(Callback):
    """Reports the metric to Optuna after each epoch and stops the fit when told to prune."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.metric not in logs:
            known = ", ".join(sorted(logs)) or "none"
            raise MetricMissingError(
                f"the tune metric {self.metric!r} is not in the training logs (they have: "
                f"{known}); set tune.metric to one of them"
            )
        value = float(logs[self.metric])
        if math.isfinite(value):
            self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            self.model.stop_training = True


def _checked(search: Search, values: Mapping[str, Any]) -> SpecReport:
    resolved = space.resolved(search.data, values)
    report = check_document(resolved, SourceMap(), SpecReport(str(search.spec_path)), False)
    if report.errors:
        first = report.errors[0]
        raise TrialFailedError(f"{first.code} {first.message_with_fix}")
    return report


def _fit(search: Search, report: SpecReport, trial: optuna.Trial) -> tuple[Any, PruningCallback]:
    signature, run = search.run_data(report)
    fit_section = dict(report.data.get("fit") or {})
    fit = runs.fit_arguments(fit_section, search.trial_dir(trial.number), run.schema)
    pruning = PruningCallback(trial, search.metric)
    fit["callbacks"].append(pruning)
    model = runs.build_model(report.data)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = model.fit(
            runs.model_inputs(run.train, signature),
            runs.model_targets(run.train, signature),
            validation_data=runs.validation_data(run, signature),
            verbose=0,
            **fit,
        )
    return history, pruning


def _score(search: Search, logs: Mapping[str, list[float]]) -> float:
    """The best epoch's metric (EarlyStopping's restored weights are that epoch's)."""
    values = [float(v) for v in logs.get(search.metric, [])]
    finite = [v for v in values if math.isfinite(v)]
    if not finite or len(finite) < len(values):
        raise TrialFailedError(f"{search.metric} is not a finite number ({values[-1:]})")
    return max(finite) if search.direction == "maximize" else min(finite)


def _record(search: Search, trial: optuna.Trial, report: Any, record: dict[str, Any]) -> None:
    folder = search.trial_dir(trial.number)
    if report is not None:
        runs.write_spec(report, search.spec_path.parent, folder)
    text = json.dumps(record, indent=2, allow_nan=True) + "\n"
    atomic_write_bytes(folder / "metrics.json", text.encode())


def objective(
    search: Search,
    training_errors: tuple[type[BaseException], ...],
    stop: StopOnInterrupt | None = None,
) -> Callable[..., float]:
    """Optuna's objective for this search: train one trial and return its score (none once a
    held Ctrl-C or SIGTERM has asked the search to stop)."""

    failures: tuple[type[BaseException], ...] = (TrialFailedError, *training_errors)

    def run(trial: optuna.Trial) -> float:
        if stop is not None and stop.signum is not None:
            raise SearchStopped(stop.signum)
        values = suggest(trial, search.parameters)
        record: dict[str, Any] = {"trial": trial.number, "params": values}
        resolved = None
        try:
            report = _checked(search, values)
            resolved = report.data
            history, pruning = _fit(search, report, trial)
            if getattr(history, "interrupted", False):
                raise SearchStopped(int(getattr(history, "stop_signal", None) or signal.SIGINT))
            logs = {k: [float(x) for x in v] for k, v in history.history.items()}
            record["history"] = logs
            if pruning.pruned_at is not None:
                trial.set_user_attr(PRUNED_ATTR, pruning.pruned_at)
                record["state"] = "pruned"
                raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at + 1}")
            record["value"] = _score(search, logs)
            record["state"] = "complete"
            return float(record["value"])
        except failures as exc:
            trial.set_user_attr(ERROR_ATTR, str(exc))
            record["state"], record["error"] = "fail", str(exc)
            raise TrialFailedError(str(exc)) from exc
        finally:
            _record(search, trial, resolved, record)

    return run
