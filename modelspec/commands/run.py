"""The `train`, `evaluate` and `predict` commands: check the spec, load the data, run the engine.

Everything a user can fix (a spec finding, a data mismatch, a missing run folder, a NaN loss, no
GPU) ends as one line on stderr and an exit code (1 a failed run, 2 bad usage or an unreadable
path), never a traceback. The commands only parse flags, call `modelspec.runs` and print; they
import the library when they run, so `modelspec --help` loads neither NumPy nor the engine.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from modelspec.errors import RunError

if TYPE_CHECKING:
    from engine.data import ModelSignature
    from engine.saving import Artifact
    from modelspec.check import SpecReport
    from modelspec.runs import RunData


class CommandError(RunError):
    """A `RunError` the command words itself (spec diagnostics come without "error: ")."""

    def __init__(self, message: str, code: int = 1, *, prefix: str = "error: ") -> None:
        super().__init__(message, code)
        self.prefix = prefix


def _exit_codes() -> list[tuple[type[BaseException], int]]:
    """Engine errors a user can fix, with their exit codes (imported late: `lint` stays fast)."""
    from engine.backend import DeviceUnavailableError
    from engine.data import DataError, UnreadableDataError

    codes: list[tuple[type[BaseException], int]] = [
        (UnreadableDataError, 2),
        (DeviceUnavailableError, 2),
        (DataError, 1),
    ]
    for module, name, code in _ENGINE_ERRORS:
        codes.append((getattr(importlib.import_module(module), name), code))
    return codes


_ENGINE_ERRORS = (
    ("engine.saving", "ArtifactError", 2),
    ("engine.atomic", "FileWriteError", 1),
    ("engine.train.errors", "TrainingError", 1),
    ("engine.build", "SpecError", 1),
    ("engine.tensorboard", "WriterUnavailableError", 1),
)


def _exit_code(exc: BaseException) -> int | None:
    """The exit code of an error a user can fix; None for any other."""
    if isinstance(exc, RunError):
        return exc.code
    return next((code for kind, code in _exit_codes() if isinstance(exc, kind)), None)


@contextlib.contextmanager
def _user_errors(err: Console, quiet: bool = False) -> Iterator[None]:
    """Turn every error a user can fix into one line and an exit code (`quiet`: the line is
    left to rank 0 of a launched job, which meets the same error)."""
    try:
        yield
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        _fail(err, getattr(exc, "prefix", "error: ") + str(exc), code, quiet)


def _fail(err: Console, message: str, code: int, quiet: bool = False) -> NoReturn:
    if not quiet:
        err.print(message, highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code)


# --- the spec ----------------------------------------------------------------------------------


def _checked(spec: Path, overrides: list[str]) -> SpecReport:
    """Lint the spec (with `--set` applied) and stop on errors: diagnostics, not tracebacks."""
    from modelspec import report as reporters
    from modelspec.check import check_spec

    report = check_spec(spec, overrides)
    if report.errors:
        text = reporters.text(report.diagnostics, 1).rstrip()
        raise CommandError(text, 2 if report.bad_usage else 1, prefix="")
    return report


def _require(data: Mapping[str, Any], key: str, spec: Path) -> None:
    if data.get(key) is None:
        raise CommandError(f"{spec}: `train` needs a `{key}` section")


def _print_summary(console: Console, report: SpecReport) -> None:
    """The same layer table as `modelspec summary`: folded to a narrow terminal, at the width
    it needs in a log (which has no width of its own)."""
    from modelspec import summary as summaries

    if report.model is None:
        return
    if console.is_terminal:
        summaries.print_summary(report.model, console)
        return
    wide = Console(
        file=console.file,
        width=max(console.width, summaries.width(report.model)),
        highlight=False,
        force_terminal=False,
        no_color=console.no_color,
    )
    summaries.print_summary(report.model, wide)


# --- commands ----------------------------------------------------------------------------------

DeviceOption = Annotated[str, typer.Option("--device", help="cpu or gpu (needs CuPy and CUDA).")]


def train(
    spec: Annotated[Path, typer.Argument(help="The spec file to train.")],
    device: DeviceOption = "cpu",
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default runs/<name>/).")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key by dotted path, e.g. fit.epochs=3."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue from the last checkpoint in this run folder."),
    ] = None,
) -> None:
    """Train the model of SPEC and write its run folder: model, spec, history.

    Under mpirun or srun with more than one process, the run is data-parallel (rank 0 writes)."""
    from modelspec import data_progress, replicas, run_folder, run_lock, runs
    from modelspec.progress import metrics_table

    console, err = Console(), Console(stderr=True)
    with _user_errors(err, quiet=replicas.launched_follower()):
        report = _checked(spec, overrides or [])
        data: dict[str, Any] = report.data
        _require(data, "compile", spec)
        signature = runs.signature_of(report)
        run_dir = out or resume or runs.default_run_dir(data, spec)
        fit_section = dict(data.get("fit") or {})
        with (
            contextlib.ExitStack() as stack,
            runs.device(device),
            runs.warning_lines(err),
            replicas.session(fit_section, err, _exit_code) as role,
        ):
            if not role.lead:
                console = Console(quiet=True)
            if role.description:
                ranks = f"{role.size} rank{'s' * (role.size != 1)}"
                console.print(f"Data-parallel over {ranks} ({role.description})", soft_wrap=True)
            dtype = str(data.get("dtype", "float32"))
            config = runs.data_config(data, spec)
            with data_progress.shown(console, f"Reading the data of {spec.name} ..."):
                run = runs.load_run_data(config, spec.parent, signature, dtype)
            fit = runs.fit_arguments(fit_section, run_dir, run.schema, writes=role.lead)
            model = runs.build_model(data)
            if role.lead:
                stack.enter_context(run_folder.removed_if_left_empty(run_dir))
            stack.enter_context(run_lock.locked(run_dir, take=role.lead))
            if resume is not None:
                fit["initial_epoch"] = runs.resume_from(model, resume, spec)
                if fit["initial_epoch"] >= fit["epochs"]:
                    console.print(_nothing_to_resume(resume, fit["epochs"]), soft_wrap=True)
                    return
            if role.lead:
                _print_summary(console, report)
            verbose = fit_section.get("verbose", "auto")
            results = _train(console, model, run, signature, fit, run_dir, verbose, role.lead)
            if role.lead:
                runs.save_run(model, run_dir, run, results)
                runs.write_spec(data, spec.parent, run_dir)
                _write_report(console, model, run_dir)
    console.print(metrics_table(results))
    console.print(f"Saved the run to {run_dir}", highlight=False, markup=False, soft_wrap=True)
    history = getattr(model, "history", None)
    if getattr(history, "interrupted", False):
        # saved; 130 (Ctrl-C) or 143 (SIGTERM) tells the shell or scheduler what ended it
        raise typer.Exit(128 + (getattr(history, "stop_signal", None) or signal.SIGINT))


def _nothing_to_resume(run_dir: Path, epochs: int) -> str:
    """A finished run is left as it is: resuming it would train nothing and rewrite its files."""
    return (
        f"{run_dir} has trained all {epochs} epochs of fit.epochs already: nothing to resume; "
        f"to train on, raise it, e.g. --set fit.epochs={2 * epochs}"
    )


def _write_report(console: Console, model: Any, run_dir: Path) -> None:
    """The run's `history.csv` and curves PNG; without matplotlib, say once why there is no PNG."""
    from modelspec.run_report import write_run_report

    history = getattr(getattr(model, "history", None), "history", None) or {}
    written = write_run_report(run_dir, history)
    if written.note:
        console.print(f"note: {written.note}", highlight=False, markup=False, soft_wrap=True)


def _train(
    console: Console,
    model: Any,
    run: RunData,
    signature: ModelSignature,
    fit: dict[str, Any],
    run_dir: Path,
    verbose: Any,
    lead: bool = True,
) -> dict[str, dict[str, float]]:
    """Fit, checkpointing each epoch (Ctrl-C stops cleanly and keeps what was learnt); then test.

    Only the `lead` process (rank 0 of a data-parallel run) checkpoints, shows progress and
    tests."""
    import numpy as np

    from modelspec import data_progress, runs
    from modelspec.progress import progress_callback

    callbacks = fit.pop("callbacks")
    steps = runs.steps_per_epoch(run.train, fit["validation_split"], fit["batch_size"])
    callbacks.append(runs.checkpointer(run, run_dir, steps, writes=lead))
    if lead:
        progress = progress_callback(console, fit["epochs"], steps, verbose)
        if progress is not None:
            callbacks.insert(0, progress)
    try:
        # A diverging run is reported once, as TrainingError, not as a stream of NumPy warnings.
        with (
            np.errstate(over="ignore", invalid="ignore", divide="ignore"),
            data_progress.shown_within(console),
        ):
            history = model.fit(
                runs.model_inputs(run.train, signature),
                runs.model_targets(run.train, signature),
                validation_data=runs.validation_data(run, signature),
                callbacks=callbacks,
                verbose=0,
                **fit,
            )
    except KeyboardInterrupt:
        history = getattr(model, "history", None)
    if getattr(history, "interrupted", False):
        console.print("Interrupted: saving the model as it is now.")
    results = runs.history_results(history)
    if run.test is not None and lead:
        results["test"] = runs.evaluate_model(model, run.test, signature, fit["batch_size"])
    return results


def evaluate(
    target: Annotated[
        Path, typer.Argument(help="A spec file, a run folder, or a model file (with --data).")
    ],
    model_dir: Annotated[
        Path | None, typer.Option("--model", help="The run folder (default runs/<name>/).")
    ] = None,
    data_file: Annotated[
        Path | None, typer.Option("--data", help="Evaluate on this file instead of data.test.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    device: DeviceOption = "cpu",
) -> None:
    """Evaluate a trained model on the spec's test data (or --data FILE); trains nothing."""
    from engine.data import resolve_path
    from engine.streaming import open_data
    from modelspec import data_progress, runs
    from modelspec.progress import metrics_table

    console, err = Console(), Console(stderr=True)
    with _user_errors(err):
        if output_format not in ("text", "json"):
            raise CommandError(f"--format must be text or json; got {output_format!r}", 2)
        if not target.exists():
            raise CommandError(f"{target}: no such spec file or run folder", 2)
        spec, report, run_dir, artifact = _evaluation_target(target, model_dir)
        data: dict[str, Any] = report.data
        signature = runs.signature_of(report)
        with runs.device(device):
            model, schema = runs.load_trained(run_dir, artifact)
            source, base_dir = runs.evaluation_source(data, spec, data_file)
            with data_progress.shown(err, "Reading the data ..."):
                dataset, _ = open_data(source, base_dir, signature, schema)
            batch = int((data.get("fit") or {}).get("batch_size") or 32)
            metrics = runs.evaluate_model(model, dataset, signature, batch)
    if output_format == "json":
        typer.echo(json.dumps(metrics))
    else:
        shown = _as_typed(resolve_path(source.path, base_dir))
        console.print(f"Evaluation on {shown}", highlight=False, markup=False, soft_wrap=True)
        console.print(metrics_table({"test": metrics}, title=None))


def _evaluation_target(
    target: Path, model_dir: Path | None
) -> tuple[Path, SpecReport, Path, Artifact | None]:
    """The spec, its checked report and the model for `evaluate`'s argument: a model file
    carries its own spec (and, read once, is the model unless --model names another), a run
    folder has its spec.yaml, a spec names its run folder."""
    from engine.saving import is_artifact_file
    from modelspec import runs

    if is_artifact_file(target):
        artifact, _ = runs.read_stored(target)
        report = runs.stored_report(target, artifact)
        return target, report, model_dir or target, artifact if model_dir is None else None
    spec = runs.run_spec(target) if target.is_dir() else target
    report = _checked(spec, [])
    return (
        spec,
        report,
        model_dir or (target if target.is_dir() else runs.default_run_dir(report.data, spec)),
        None,
    )


def _as_typed(path: Path) -> str:
    """A path as the user would type it here: relative to the current folder when inside it."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def predict(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A run folder.")],
    input_file: Annotated[Path, typer.Option("--input", help="CSV, NPZ or NPY of inputs.")],
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output", help="Where to write: .csv, .npy or .npz (default: CSV on stdout)."
        ),
    ] = None,
    probabilities: Annotated[
        bool, typer.Option("--probabilities", help="Write class probabilities, not labels.")
    ] = False,
    device: DeviceOption = "cpu",
) -> None:
    """Predict with a trained model; classifiers write the original class labels."""
    from engine.data import write_predictions
    from modelspec import data_progress, runs
    from modelspec.predictor import Predictor

    err = Console(stderr=True)
    with _user_errors(err):
        with runs.device(device):
            predictor = Predictor.load(model_path)
            with data_progress.shown(err, f"Reading {input_file} ..."):
                inputs = predictor.inputs_from_file(input_file)
            outputs = predictor.predict(inputs)
        if output_file is None:
            _print_csv(predictor.columns(outputs, probabilities=probabilities))
        else:
            write_predictions(
                output_file,
                outputs,
                predictor.signature,
                predictor.schema,
                probabilities=probabilities,
                files=predictor.files,
            )
            rows = len(next(iter(outputs.values())))
            done = f"Wrote {rows} predictions to {output_file}"
            Console().print(done, highlight=False, markup=False, soft_wrap=True)


def _print_csv(columns: Mapping[str, list[Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values(), strict=True))
    typer.echo(text.getvalue(), nl=False)


def register(app: typer.Typer) -> None:
    """Add `train`, `evaluate` and `predict` to the modelspec app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
