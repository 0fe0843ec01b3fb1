"""What a search leaves in its run folder besides the trials: the results table, the best spec
ready for `modelspec train`, and Optuna's plots of the search.

Every file is rewritten whole (atomically) from the study at the end of each worker's search, so
several workers sharing one folder leave it consistent.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from engine.saving import atomic_write_bytes
from modelspec import runs
from modelspec.extras import MissingExtraError, require
from modelspec.tune import space
from modelspec.tune.objective import ERROR_ATTR, PRUNED_ATTR

RESULTS_FILE = "results.csv"
BEST_FILE = "best.yaml"
HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"


@dataclass
class Written:
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def results_csv(study: optuna.Study, parameters: list[str]) -> bytes:
    """One row per trial: number, state, value, each parameter, seconds, pruned epoch, error."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["trial", "state", "value", *parameters, "seconds", "pruned_at_epoch", "error"])
    for t in study.get_trials(deepcopy=False):
        seconds = t.duration.total_seconds() if t.duration is not None else ""
        pruned = t.user_attrs.get(PRUNED_ATTR)
        writer.writerow(
            [
                t.number,
                t.state.name.lower(),
                "" if t.value is None else repr(t.value),
                *[t.params.get(p, "") for p in parameters],
                f"{seconds:.2f}" if seconds != "" else "",
                "" if pruned is None else pruned + 1,
                t.user_attrs.get(ERROR_ATTR, ""),
            ]
        )
    return text.getvalue().encode()


def best_spec(study: optuna.Study, data: dict[str, Any], spec_dir: Path, out: Path) -> bytes:
    """The spec with the best trial's values, without `tune`, data paths relative to `out`."""
    best = study.best_trial
    spec = runs.portable_spec(space.resolved(data, best.params), spec_dir, out)
    head = (
        f"# The best of {len(study.trials)} trials of `modelspec tune`: trial {best.number}, "
        f"{study.user_attrs.get('metric', 'value')} = {best.value:.6g}.\n"
        f"# Train it with: modelspec train {out / BEST_FILE}\n"
    )
    return (head + yaml.safe_dump(spec, sort_keys=False)).encode()


def _importance_evaluator() -> Any:
    """fANOVA (Optuna's default) needs scikit-learn; PED-ANOVA is Optuna's own."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return optuna.importance.PedAnovaImportanceEvaluator()
    return None


def _plot(path: Path, draw: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib plots are marked experimental
        axes = draw()
    figure = axes.figure
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=120)
    figure.clf()
    import matplotlib.pyplot as plt

    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def plots(study: optuna.Study, out: Path, written: Written) -> None:
    try:
        require("matplotlib", "plots", "Plotting the search")
    except MissingExtraError as exc:
        written.notes.append(str(exc))
        return
    from optuna.visualization import matplotlib as views

    _plot(out / HISTORY_PLOT, lambda: views.plot_optimization_history(study))
    written.files.append(out / HISTORY_PLOT)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        written.notes.append("parameter importances need at least two complete trials")
        return
    evaluator = _importance_evaluator()
    _plot(out / IMPORTANCE_PLOT, lambda: views.plot_param_importances(study, evaluator=evaluator))
    written.files.append(out / IMPORTANCE_PLOT)


def write_outputs(
    study: optuna.Study, data: dict[str, Any], parameters: list[str], spec_dir: Path, out: Path
) -> Written:
    """The results table, the best spec (when a trial completed) and the plots."""
    written = Written()
    atomic_write_bytes(out / RESULTS_FILE, results_csv(study, parameters))
    written.files.append(out / RESULTS_FILE)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        written.notes.append("no trial completed, so there is no best spec")
        return written
    atomic_write_bytes(out / BEST_FILE, best_spec(study, data, spec_dir, out))
    written.files.append(out / BEST_FILE)
    plots(study, out, written)
    return written
