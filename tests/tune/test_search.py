"""`modelspec tune` end to end: outputs, determinism, pruning, failing trials, resume, workers."""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from modelspec.check import check_spec
from modelspec.cli import app
from tests.tune.conftest import SPEC, write_spec

runner = CliRunner()


def _tune(spec: Path, out: Path, *flags: str) -> Any:
    result = runner.invoke(app, ["tune", str(spec), "--out", str(out), *flags])
    assert result.exit_code == 0, result.output
    return result


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_a_search_writes_trials_results_best_spec_and_plots(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "search"
    _tune(spec, out)
    rows = _rows(out)
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3"]
    for row in rows:
        folder = out / "trials" / f"{int(row['trial']):04d}"
        trial_spec = yaml.safe_load((folder / "spec.yaml").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        assert "tune" not in trial_spec
        assert trial_spec["fit"]["batch_size"] == int(row["fit.batch_size"])
        assert metrics["state"] == row["state"]
    complete = [r for r in rows if r["state"] == "complete"]
    best = max(complete, key=lambda r: float(r["value"]))
    best_spec = yaml.safe_load((out / "best.yaml").read_text())
    assert "tune" not in best_spec
    assert best_spec["model"]["layers"][1]["units"] == int(best["model.layers[1].units"])
    lr = best_spec["compile"]["optimizer"]["learning_rate"]
    assert lr == float(best["compile.optimizer.learning_rate"])
    assert check_spec(out / "best.yaml").errors == []  # data paths rewritten for the new place
    assert (out / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "param_importances.png").read_bytes()[:4] == b"\x89PNG"
    trained = runner.invoke(app, ["train", str(out / "best.yaml"), "--out", str(tmp_path / "r")])
    assert trained.exit_code == 0, trained.output


def test_the_same_seed_gives_the_same_trials(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    _tune(spec, tmp_path / "a")
    _tune(spec, tmp_path / "b")
    drop = ("seconds",)
    first = [{k: v for k, v in r.items() if k not in drop} for r in _rows(tmp_path / "a")]
    second = [{k: v for k, v in r.items() if k not in drop} for r in _rows(tmp_path / "b")]
    assert first == second
    assert len({r["compile.optimizer.learning_rate"] for r in first}) == 4


def test_the_median_pruner_stops_trials_worse_than_the_median(tmp_path: Path) -> None:
    spec_data = copy.deepcopy(SPEC)
    spec_data["fit"]["epochs"] = 6
    # Rates that learn and rates too small to learn anything, in the grid's seeded order.
    spec_data["tune"].update(sampler="grid", n_trials=10, metric="val_loss")
    rates = [0.05, 0.04, 0.03, 0.02, 0.01, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]
    spec_data["tune"]["space"] = {
        "compile.optimizer.learning_rate": {"type": "categorical", "choices": rates}
    }
    out = tmp_path / "search"
    _tune(write_spec(tmp_path, spec_data), out)
    rows = _rows(out)
    histories = [
        json.loads((out / "trials" / f"{i:04d}" / "metrics.json").read_text())["history"]
        for i in range(len(rows))
    ]
    pruned = [i for i, r in enumerate(rows) if r["state"] == "pruned"]
    assert pruned
    for i in pruned:
        epochs = int(rows[i]["pruned_at_epoch"])
        curve = histories[i]["val_loss"]
        assert len(curve) == epochs < 6  # stopped at the epoch it was pruned
        # The rule, from the recorded curves: below the median of the earlier finished trials.
        earlier = sorted(
            h["val_loss"][epochs - 1]
            for j, h in enumerate(histories[:i])
            if rows[j]["state"] == "complete"
        )
        median = (earlier[(len(earlier) - 1) // 2] + earlier[len(earlier) // 2]) / 2
        assert curve[-1] > median


def test_failing_trials_are_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    spec_data = copy.deepcopy(SPEC)
    spec_data["compile"]["optimizer"] = {"type": "sgd", "learning_rate": 0.01}
    spec_data["model"]["layers"][1]["activation"] = "linear"
    spec_data["tune"].update(sampler="grid", n_trials=4, pruner="none")
    spec_data["tune"]["space"] = {
        # binary_crossentropy on a 3-way softmax: each value is valid, the combination is not.
        "compile.loss": {
            "type": "categorical",
            "choices": ["sparse_categorical_crossentropy", "binary_crossentropy"],
        },
        # Plain SGD at a rate this large makes the loss NaN in the first steps.
        "compile.optimizer.learning_rate": {"type": "categorical", "choices": [0.01, 1e30]},
    }
    out = tmp_path / "search"
    result = _tune(write_spec(tmp_path, spec_data), out)
    rows = _rows(out)
    states = {(r["compile.loss"], r["compile.optimizer.learning_rate"]): r for r in rows}
    good = states[("sparse_categorical_crossentropy", "0.01")]
    assert good["state"] == "complete"
    assert "E401" in states[("binary_crossentropy", "0.01")]["error"]
    nan = states[("sparse_categorical_crossentropy", "1e+30")]
    assert nan["state"] == "fail" and "nan" in nan["error"].lower()
    assert len(rows) == 4 and "Traceback" not in result.output
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["compile"]["optimizer"]["learning_rate"] == 0.01


def test_a_study_resumes_where_it_stopped(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "search"
    _tune(spec, out, "--trials", "2")
    first = _rows(out)
    result = _tune(spec, out, "--trials", "3")
    assert "resuming after 2 trials" in result.output
    rows = _rows(out)
    assert len(rows) == 3 and rows[:2] == first


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelspec.cli", *args]


def _complete(out: Path, study: str) -> int:
    """Complete trials in the search's SQLite study, 0 before it exists."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if not (out / "study.db").exists():
        return 0
    try:
        found = optuna.load_study(study_name=study, storage=f"sqlite:///{out / 'study.db'}")
    except (KeyError, SQLAlchemyError):  # not created yet
        return 0
    return len(found.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


def _running_search(tmp_path: Path, trials: int) -> tuple[subprocess.Popen[str], Path, Path]:
    """A search in its own process, returned once its first trial is complete."""
    spec_data = copy.deepcopy(SPEC)
    spec_data["fit"]["epochs"] = 40
    spec_data["tune"].update(n_trials=trials, pruner="none")
    spec = write_spec(tmp_path, spec_data)
    out = tmp_path / "search"
    worker = subprocess.Popen(
        _cli("tune", str(spec), "--out", str(out)), cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    while not _complete(out, "iris_search") and worker.poll() is None:
        time.sleep(0.1)
    assert worker.poll() is None, "the search ended before it could be stopped"
    return worker, spec, out


def test_a_killed_study_resumes(tmp_path: Path) -> None:
    worker, spec, out = _running_search(tmp_path, 3)
    os.kill(worker.pid, signal.SIGKILL)
    worker.communicate()
    done = subprocess.run(
        _cli("tune", str(spec), "--out", str(out)), cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "resuming after" in done.stdout
    rows = _rows(out)
    finished = [r for r in rows if r["state"] in ("complete", "pruned", "fail")]
    assert len(finished) == 3
    assert rows[0]["state"] == "complete"  # the trial finished before the kill is kept


def test_two_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    spec_data = copy.deepcopy(SPEC)
    spec_data["tune"]["n_trials"] = 6
    spec = write_spec(tmp_path, spec_data)
    out = tmp_path / "search"
    out.mkdir()
    flags = ["--out", str(out), "--storage", f"sqlite:///{out / 'shared.db'}", "--study", "s"]
    workers = [
        subprocess.Popen(
            _cli("tune", str(spec), *flags), cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate()[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    rows = _rows(out)
    numbers = [int(r["trial"]) for r in rows]
    assert numbers == list(range(len(rows))) and 6 <= len(rows) <= 7
    assert all(r["state"] in ("complete", "pruned") for r in rows)
    for n in numbers:
        assert (out / "trials" / f"{n:04d}" / "spec.yaml").is_file()


def test_help_and_lint_do_not_import_optuna() -> None:
    code = (
        "import sys; from modelspec.cli import app; from modelspec.check import check_spec; "
        "check_spec('specs/diabetes_regression.yaml'); print('optuna' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert found.stdout.strip() == "False", found.stderr


def test_ctrl_c_stops_the_search_writes_its_files_and_exits_130(tmp_path: Path) -> None:
    worker, _, out = _running_search(tmp_path, 20)
    worker.send_signal(signal.SIGINT)
    try:
        printed, _ = worker.communicate(timeout=600)  # a guard against a hang, not a measure
    except subprocess.TimeoutExpired:
        worker.kill()
        raise
    assert worker.returncode == 130, printed
    assert "run the same command again to resume" in printed
    assert _rows(out)[0]["state"] == "complete" and (out / "best.yaml").is_file()


def test_a_spec_without_a_tune_section_is_one_line_and_exit_1(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {k: v for k, v in SPEC.items() if k != "tune"})
    result = runner.invoke(app, ["tune", str(spec), "--out", str(tmp_path / "search")])
    assert result.exit_code == 1
    assert "needs a `tune` section" in result.output and "Traceback" not in result.output


def test_a_signal_between_trials_waits_for_the_trial_to_be_stored(tmp_path: Path) -> None:
    """Ctrl-C landing in Optuna's bookkeeping (here: its after-trial callback) is held, not
    raised inside the storage code: the finished trial is stored and the search then stops."""
    from modelspec.tune import search
    from modelspec.tune.objective import SearchStopped

    spec_data = copy.deepcopy(SPEC)
    spec_data["tune"].update(n_trials=5, pruner="none")
    spec = write_spec(tmp_path, spec_data)
    prepared = search.prepare(spec, spec_data, search.Options(tmp_path / "search"))

    def interrupt(*_: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(SearchStopped) as stopped:
        search.run(prepared, interrupt)
    assert stopped.value.signum == signal.SIGINT
    states = [t.state.name for t in prepared.study.trials]
    assert states == ["COMPLETE"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
