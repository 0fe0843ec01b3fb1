"""The `tune` command: search the spec's `tune` space with Optuna and write the search's folder.

Optuna is the `tune` extra; it is imported only when this command runs, so `--help` and `lint`
never load it.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from modelspec.commands.run import (
    CommandError,
    DeviceOption,
    _checked,
    _require,
    _user_errors,
)

if TYPE_CHECKING:
    import optuna


def tune(
    spec: Annotated[Path, typer.Argument(help="The spec file whose `tune` section to search.")],
    trials: Annotated[
        int | None,
        typer.Option("--trials", min=1, help="Trials in the study (overrides n_trials)."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Stop starting trials after S seconds.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Study database URL (default: SQLite in the run folder)."),
    ] = None,
    study_name: Annotated[
        str | None, typer.Option("--study", help="Study name (default: the spec's name).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default runs/<name>-tune/).")
    ] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Search SPEC's `tune` space: train each trial, prune bad ones early, keep the best spec.

    A killed search resumes when run again; several processes given the same --storage and
    --study share one search."""
    from modelspec import runs
    from modelspec.extras import MissingExtraError, require

    console, err = Console(), Console(stderr=True)
    with _user_errors(err):
        try:
            require("optuna", "tune", "`modelspec tune`")
        except MissingExtraError as exc:
            raise CommandError(str(exc)) from None
        from modelspec.tune import search

        report = _checked(spec, [])
        data: dict[str, Any] = report.data
        _require(data, "compile", spec)
        if data.get("tune") is None:
            raise CommandError(f"{spec}: `tune` needs a `tune` section (see docs/spec-format.md)")
        folder = out or runs.default_run_dir(data, spec).with_name(
            f"{data.get('name') or spec.stem}-tune"
        )
        options = search.Options(folder, trials, timeout, storage, study_name)
        with runs.device(device):
            prepared = search.prepare(spec, data, options)
            _announce(console, prepared)
            try:
                search.run(prepared, _progress(console, prepared))
            except KeyboardInterrupt as stop:
                _finish(console, prepared)
                console.print("Interrupted: run the same command again to resume the study.")
                # 130 (Ctrl-C) or 143 (SIGTERM), as `train` exits
                raise typer.Exit(128 + getattr(stop, "signum", signal.SIGINT)) from None
        _finish(console, prepared)


def _announce(console: Console, prepared: Any) -> None:
    done = len(prepared.study.trials)
    budget = f"{prepared.total} trials" if prepared.total else f"{prepared.seconds:g} s"
    resumed = f", resuming after {done} trials" if done else ""
    search = prepared.search
    console.print(
        f"Tuning {search.metric} ({search.direction}) over {len(search.parameters)} "
        f"parameters: {budget}{resumed}; study in {search.out}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _progress(console: Console, prepared: Any) -> Any:
    """One line per finished trial: its state, score, the best so far, and its values."""

    def show(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from modelspec.tune.objective import ERROR_ATTR, PRUNED_ATTR
        from modelspec.tune.study import finished

        of = f"/{prepared.total}" if prepared.total else ""
        state = trial.state.name.lower()
        if trial.value is not None:
            state += f"  {prepared.search.metric} {trial.value:.4g}"
        if PRUNED_ATTR in trial.user_attrs:
            state += f" at epoch {trial.user_attrs[PRUNED_ATTR] + 1}"
        if ERROR_ATTR in trial.user_attrs:
            state += f" ({trial.user_attrs[ERROR_ATTR]})"
        try:
            best = f"  best {study.best_value:.4g} (trial {study.best_trial.number:04d})"
        except ValueError:
            best = ""
        values = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        # numbered as the trial folders and results.csv number them
        line = f"[{finished(study)}{of}] trial {trial.number:04d}: {state}{best}  [{values}]"
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    return show


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _finish(console: Console, prepared: Any) -> None:
    from modelspec.tune import search

    written = search.finish(prepared)
    for note in written.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    for path in written.files:
        console.print(f"Wrote {path}", highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `tune` to the modelspec app."""
    app.command("tune")(tune)
