"""The `train`, `evaluate` and `predict` commands: check the spec, load the data, run the engine.

Everything a user can fix (a spec finding, a data mismatch, a missing run folder, a NaN loss, no
GPU) ends as one line on stderr and an exit code (1 a failed run, 2 bad usage or an unreadable
path), never a traceback. The commands only parse flags, call the engine and print.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from engine.backend import DeviceUnavailableError
from engine.config.data import DataConfig, DataSource
from engine.data import (
    DataError,
    DataSchema,
    Dataset,
    InputSpec,
    ModelSignature,
    OutputSpec,
    UnreadableDataError,
    load_dataset,
    prediction_columns,
    resolve_path,
    write_predictions,
)
from engine.spec_graph import resolve
from modelspec import report as reporters
from modelspec import summary as summaries
from modelspec.check import SpecReport, check_spec
from modelspec.infer import infer
from modelspec.progress import metrics_table, progress_callback

SPEC_FILE = "spec.yaml"
SCHEMA_KEY = "data_schema"
RUNS_DIR = "runs"


class CommandError(Exception):
    """A problem the user can fix, with the exit code it ends the command with."""

    def __init__(self, message: str, code: int = 1, *, prefix: str = "error: ") -> None:
        super().__init__(message)
        self.code = code
        self.prefix = prefix


def _exit_codes() -> list[tuple[type[BaseException], int]]:
    """Engine errors a user can fix, with their exit codes (imported late: `lint` stays fast)."""
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
    ("engine.train.errors", "TrainingError", 1),
    ("engine.build", "SpecError", 1),
    ("engine.tensorboard", "WriterUnavailableError", 1),
)


@contextlib.contextmanager
def _user_errors(err: Console) -> Iterator[None]:
    """Turn every error a user can fix into one line and an exit code."""
    try:
        yield
    except CommandError as exc:
        _fail(err, exc.prefix + str(exc), exc.code)
    except Exception as exc:
        for kind, code in _exit_codes():
            if isinstance(exc, kind):
                _fail(err, f"error: {exc}", code)
        raise


def _fail(err: Console, message: str, code: int) -> NoReturn:
    err.print(message, highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code)


# --- the spec ----------------------------------------------------------------------------------


def _checked(spec: Path, overrides: list[str]) -> SpecReport:
    """Lint the spec (with `--set` applied) and stop on errors: diagnostics, not tracebacks."""
    report = check_spec(spec, overrides)
    if report.errors:
        usage = report.unreadable or any(d.code == "E005" for d in report.errors)
        text = reporters.text(report.diagnostics, 1).rstrip()
        raise CommandError(text, 2 if usage else 1, prefix="")
    return report


def _require(data: Mapping[str, Any], key: str, spec: Path) -> None:
    if data.get(key) is None:
        raise CommandError(f"{spec}: `train` needs a `{key}` section")


def _loss_of(compile_section: Mapping[str, Any], output: str) -> tuple[str, bool]:
    """The loss name of one output (a name, a {type: ...} map, or a map keyed by output)."""
    loss = compile_section.get("loss", "mean_squared_error")
    if isinstance(loss, dict) and "type" not in loss:
        loss = loss.get(output, "mean_squared_error")
    if isinstance(loss, dict):
        return _snake(str(loss["type"])), bool(loss.get("from_logits", False))
    return _snake(str(loss)), False


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def signature_of(report: SpecReport) -> ModelSignature:
    """What the model takes and gives, from the checked spec (nothing is allocated)."""
    if report.graph is None or report.model is None:
        raise CommandError(f"{report.path}: the model could not be resolved")
    compile_section = dict((report.data or {}).get("compile") or {})
    inputs = tuple(InputSpec(g.name, tuple(g.shape), g.dtype) for g in report.graph.inputs)
    outputs = []
    for name in report.model.outputs:
        shape = report.model.shapes.get(name)
        if not isinstance(shape, tuple):
            raise CommandError(f"{report.path}: the shape of output {name!r} is unknown")
        loss, from_logits = _loss_of(compile_section, name)
        outputs.append(OutputSpec(name, tuple(shape[1:]), loss, from_logits))
    return ModelSignature(inputs, tuple(outputs))


# --- data --------------------------------------------------------------------------------------


@dataclass
class RunData:
    """The data of a run, fitted to the model: train, optional validation and test, the schema."""

    train: Dataset
    schema: DataSchema
    validation: Dataset | None = None
    test: Dataset | None = None


def load_run_data(
    config: DataConfig, base_dir: Path, signature: ModelSignature, dtype: str
) -> RunData:
    """Load and check every split before training starts, the training split first."""
    if config.train is None:
        raise CommandError("`train` needs `data.train`")
    train, schema = load_dataset(config.train, base_dir, signature, dtype=dtype)
    run = RunData(train, schema)
    if config.validation is not None:
        run.validation, _ = load_dataset(
            config.validation, base_dir, signature, schema, dtype=dtype
        )
    if config.test is not None:
        run.test, _ = load_dataset(config.test, base_dir, signature, schema, dtype=dtype)
    return run


def _inputs(dataset: Dataset, signature: ModelSignature) -> Any:
    """A single array for a single-input model, else a dict keyed by input name."""
    if len(signature.inputs) == 1:
        return dataset.x[signature.inputs[0].name]
    return dataset.x


def _targets(dataset: Dataset, signature: ModelSignature) -> Any:
    if len(signature.outputs) == 1:
        return dataset.y[signature.outputs[0].name]
    return dataset.y


def _as_outputs(predictions: Any, signature: ModelSignature) -> dict[str, np.ndarray]:
    if isinstance(predictions, Mapping):
        return {name: np.asarray(value) for name, value in predictions.items()}
    if isinstance(predictions, list | tuple):
        return {s.name: np.asarray(p) for s, p in zip(signature.outputs, predictions, strict=True)}
    return {signature.outputs[0].name: np.asarray(predictions)}


# --- the engine side ---------------------------------------------------------------------------


def _build(spec_data: dict[str, Any]) -> Any:
    from engine.build import from_spec

    return from_spec(spec_data)


def _fit_arguments(fit: dict[str, Any], run_dir: Path, schema: DataSchema) -> dict[str, Any]:
    """`model.fit` keyword arguments from the spec's `fit` section (callback files in the run)."""
    from engine.config.fit import FitConfig
    from engine.train.loops import fit_arguments

    section = dict(fit)
    if section.get("class_weight"):
        section["class_weight"] = _class_weight_ids(section["class_weight"], schema)
    try:
        config = FitConfig.model_validate(section)
    except ValidationError as exc:
        raise CommandError(f"invalid `fit` section: {exc}") from exc
    arguments = fit_arguments(config, run_dir)
    del arguments["verbose"]
    return arguments


def _class_weight_ids(weights: Mapping[Any, float], schema: DataSchema) -> dict[Any, float]:
    """`class_weight` may name classes by their original (string) labels."""
    classes = next(iter(schema.classes.values()), []) if len(schema.classes) == 1 else []
    ids = {label: i for i, label in enumerate(classes)}
    unknown = [k for k in weights if isinstance(k, str) and k not in ids]
    if unknown:
        raise CommandError(f"fit.class_weight: unknown classes {unknown}; known: {classes}")
    return {ids.get(k, k) if isinstance(k, str) else k: v for k, v in weights.items()}


def _evaluate(
    model: Any, dataset: Dataset, signature: ModelSignature, batch_size: int
) -> dict[str, float]:
    result = model.evaluate(
        _inputs(dataset, signature),
        _targets(dataset, signature),
        batch_size=batch_size,
        return_dict=True,
    )
    return {name: float(value) for name, value in result.items()}


def _flat_metrics(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """{"loss", "val_loss", "test_loss", ...}: Keras's prefixes, for the artifact's metadata."""
    prefixes = {"train": "", "validation": "val_", "test": "test_"}
    return {prefixes[split] + k: v for split, values in results.items() for k, v in values.items()}


def _save(
    model: Any, run_dir: Path, run: RunData, results: Mapping[str, Mapping[str, float]]
) -> None:
    """The artifact, with the data schema (columns and class labels) in its metadata."""
    from engine.saving import fingerprint_file, model_artifact, write_artifact

    fingerprints = {
        split: fingerprint_file(dataset.source)
        for split, dataset in (
            ("train", run.train),
            ("validation", run.validation),
            ("test", run.test),
        )
        if dataset is not None
    }
    artifact = model_artifact(
        model,
        label_maps=run.schema.classes,
        data_fingerprints=fingerprints,
        final_metrics=_flat_metrics(results),
    )
    artifact.metadata[SCHEMA_KEY] = run.schema.model_dump()
    write_artifact(run_dir, artifact)


def _load(model_path: Path) -> tuple[Any, DataSchema | None]:
    """A trained model and the data schema stored with it."""
    from engine.saving import load_model

    if not model_path.exists():
        raise CommandError(f"{model_path}: no such run folder or model file", 2)
    model = load_model(model_path)
    stored = (getattr(model, "artifact_metadata", None) or {}).get(SCHEMA_KEY)
    return model, DataSchema.model_validate(stored) if stored else None


def _stored_report(model_path: Path) -> SpecReport:
    """The resolved graph and shapes of the model stored in an artifact (a run folder or file).

    The stored `model` mapping is the Model's own config (it carries keys such as the model's
    name that a hand-written spec does not), so it is resolved and inferred, not linted.
    """
    from engine.saving import read_artifact

    if not model_path.exists():
        raise CommandError(f"{model_path}: no such run folder or model file", 2)
    spec = read_artifact(model_path).spec
    graph, problems = resolve(spec.get("model"))
    model, shape_problems = infer(graph, model_path.stem, str(spec.get("dtype", "float32")))
    if problems or shape_problems or not model.complete:
        raise CommandError(f"{model_path}: the stored model does not resolve", 2)
    return SpecReport(str(model_path), data=spec, graph=graph, model=model)


# --- run folders -------------------------------------------------------------------------------


def _portable_spec(data: dict[str, Any], spec_dir: Path, run_dir: Path) -> dict[str, Any]:
    """The spec as trained, its data paths rewritten relative to the run folder."""
    saved = json.loads(json.dumps(data))
    for split in (saved.get("data") or {}).values():
        if isinstance(split, dict) and isinstance(split.get("path"), str):
            absolute = resolve_path(split["path"], spec_dir).resolve()
            split["path"] = os.path.relpath(absolute, run_dir.resolve())
    return saved


def _write_spec(data: dict[str, Any], spec_dir: Path, run_dir: Path) -> None:
    text = yaml.safe_dump(_portable_spec(data, spec_dir, run_dir), sort_keys=False)
    (run_dir / SPEC_FILE).write_text(text, encoding="utf-8")


def _run_spec(model_path: Path) -> Path:
    """The spec saved in a run folder (or beside a model file)."""
    folder = model_path if model_path.is_dir() else model_path.parent
    spec = folder / SPEC_FILE
    if not spec.is_file():
        raise CommandError(f"{model_path}: not a run folder (no {SPEC_FILE} in it)", 2)
    return spec


def _data_config(data: Mapping[str, Any], spec: Path) -> DataConfig:
    try:
        return DataConfig.model_validate(data.get("data") or {})
    except ValueError as exc:
        raise CommandError(f"{spec}: invalid `data` section: {exc}") from exc


def _history_results(history: Any) -> dict[str, dict[str, float]]:
    """The last epoch's values, split into train and validation columns."""
    logs = getattr(history, "history", None) or {}
    train = {k: float(v[-1]) for k, v in logs.items() if v and not k.startswith("val_")}
    validation = {k[4:]: float(v[-1]) for k, v in logs.items() if v and k.startswith("val_")}
    return {"train": train, "validation": validation}


def _steps(dataset: Dataset, validation_split: float, batch_size: int) -> int:
    """Steps per epoch, as fit counts them (the validation split is the last fraction)."""
    return max(1, -(-int(len(dataset) * (1.0 - validation_split)) // batch_size))


def _print_summary(console: Console, report: SpecReport) -> None:
    """The same layer table as `modelspec summary`, at the width it needs."""
    if report.model is None:
        return
    wide = Console(
        file=console.file,
        width=max(console.width, summaries.width(report.model)),
        highlight=False,
        force_terminal=console.is_terminal,
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
    """Train the model of SPEC and write its run folder: model, spec, history."""
    console, err = Console(), Console(stderr=True)
    with _user_errors(err):
        report = _checked(spec, overrides or [])
        data: dict[str, Any] = report.data
        _require(data, "compile", spec)
        signature = signature_of(report)
        run_dir = out or resume or _default_run_dir(data, spec)
        with _device(device):
            dtype = str(data.get("dtype", "float32"))
            run = load_run_data(_data_config(data, spec), spec.parent, signature, dtype)
            fit = _fit_arguments(dict(data.get("fit") or {}), run_dir, run.schema)
            model = _build(data)
            if resume is not None:
                fit["initial_epoch"] = _resume(model, resume)
            _print_summary(console, report)
            run_dir.mkdir(parents=True, exist_ok=True)
            verbose = (data.get("fit") or {}).get("verbose", "auto")
            results = _train(console, model, run, signature, fit, run_dir, verbose)
            _save(model, run_dir, run, results)
            _write_spec(data, spec.parent, run_dir)
            _write_report(console, model, run_dir)
    console.print(metrics_table(results))
    console.print(f"Saved the run to {run_dir}", highlight=False)


def _write_report(console: Console, model: Any, run_dir: Path) -> None:
    """The run's `history.csv` and curves PNG; without matplotlib, say once why there is no PNG."""
    from modelspec.run_report import write_run_report

    history = getattr(getattr(model, "history", None), "history", None) or {}
    written = write_run_report(run_dir, history)
    if written.note:
        console.print(f"note: {written.note}", highlight=False, markup=False, soft_wrap=True)


def _resume(model: Any, run_dir: Path) -> int:
    """Load the last complete checkpoint into `model`; returns the epoch to continue from."""
    from engine.saving import apply_artifact, latest_checkpoint

    path, artifact = latest_checkpoint(run_dir)
    apply_artifact(model, artifact, str(path))
    return int((artifact.training_state or {}).get("epoch", 0))


def _train(
    console: Console,
    model: Any,
    run: RunData,
    signature: ModelSignature,
    fit: dict[str, Any],
    run_dir: Path,
    verbose: Any,
) -> dict[str, dict[str, float]]:
    """Fit, checkpointing each epoch (Ctrl-C stops cleanly and keeps what was learnt); then test."""
    from engine.saving import CheckpointCallback

    callbacks = [*fit.pop("callbacks"), CheckpointCallback(run_dir)]
    steps = _steps(run.train, fit["validation_split"], fit["batch_size"])
    progress = progress_callback(console, fit["epochs"], steps, verbose)
    if progress is not None:
        callbacks.insert(0, progress)
    validation = (
        (_inputs(run.validation, signature), _targets(run.validation, signature))
        if run.validation is not None
        else None
    )
    try:
        # A diverging run is reported once, as TrainingError, not as a stream of NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = model.fit(
                _inputs(run.train, signature),
                _targets(run.train, signature),
                validation_data=validation,
                callbacks=callbacks,
                verbose=0,
                **fit,
            )
    except KeyboardInterrupt:
        history = getattr(model, "history", None)
    if getattr(history, "interrupted", False):
        console.print("Interrupted: saving the model as it is now.")
    results = _history_results(history)
    if run.test is not None:
        results["test"] = _evaluate(model, run.test, signature, fit["batch_size"])
    return results


@contextlib.contextmanager
def _device(name: str) -> Iterator[None]:
    from engine import backend

    try:
        device = backend.canonical_device(name)
    except ValueError as exc:
        raise CommandError(str(exc), 2) from exc
    with backend.use(device):
        yield


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
    console, err = Console(), Console(stderr=True)
    with _user_errors(err):
        if output_format not in ("text", "json"):
            raise CommandError(f"--format must be text or json; got {output_format!r}", 2)
        if not target.exists():
            raise CommandError(f"{target}: no such spec file or run folder", 2)
        spec, report, run_dir = _evaluation_target(target, model_dir)
        data: dict[str, Any] = report.data
        signature = signature_of(report)
        with _device(device):
            model, schema = _load(run_dir)
            source, base_dir = _evaluation_source(data, spec, data_file)
            dataset, _ = load_dataset(source, base_dir, signature, schema)
            batch = int((data.get("fit") or {}).get("batch_size") or 32)
            metrics = _evaluate(model, dataset, signature, batch)
    if output_format == "json":
        typer.echo(json.dumps(metrics))
    else:
        console.print(metrics_table({"test": metrics}, title=f"Evaluation on {source.path}"))


def _evaluation_target(target: Path, model_dir: Path | None) -> tuple[Path, SpecReport, Path]:
    """The spec, its checked report and the model for `evaluate`'s argument: a model file
    carries its own spec, a run folder has its spec.yaml, a spec names its run folder."""
    from engine.saving import is_artifact_file

    if is_artifact_file(target):
        return target, _stored_report(target), model_dir or target
    spec = _run_spec(target) if target.is_dir() else target
    report = _checked(spec, [])
    return (
        spec,
        report,
        model_dir or (target if target.is_dir() else _default_run_dir(report.data, spec)),
    )


def _default_run_dir(data: Mapping[str, Any], spec: Path) -> Path:
    """`runs/<name>/` relative to the current directory, as `train` writes it."""
    return Path(RUNS_DIR) / str(data.get("name") or spec.stem)


def _evaluation_source(
    data: Mapping[str, Any], spec: Path, data_file: Path | None
) -> tuple[DataSource, Path]:
    if data_file is not None:
        return DataSource(path=str(data_file)), Path.cwd()
    test = _data_config(data, spec).test
    if test is None:
        raise CommandError(f"{spec}: no `data.test` to evaluate on; give --data FILE", 2)
    return test, spec.parent


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
    err = Console(stderr=True)
    with _user_errors(err):
        signature = signature_of(_stored_report(model_path))
        with _device(device):
            model, schema = _load(model_path)
            dataset, _ = load_dataset(
                DataSource(path=str(input_file)), Path.cwd(), signature, schema, need_targets=False
            )
            outputs = _as_outputs(model.predict(_inputs(dataset, signature)), signature)
        if output_file is None:
            _print_csv(outputs, signature, schema, probabilities)
        else:
            write_predictions(output_file, outputs, signature, schema, probabilities=probabilities)


def _print_csv(
    outputs: dict[str, np.ndarray],
    signature: ModelSignature,
    schema: DataSchema | None,
    probabilities: bool,
) -> None:
    columns = prediction_columns(outputs, signature, schema, probabilities=probabilities)
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
