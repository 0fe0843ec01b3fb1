"""Runs of a spec as a library: the model's signature, its data, fit arguments and run folders.

The `train`, `evaluate` and `predict` commands (`modelspec.commands.run`) parse flags, call
these functions and print; every problem a user can fix is a `RunError` carrying the exit code
it ends the command with (1 a failed run, 2 bad usage or an unreadable path).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from pydantic import ValidationError

from engine.atomic import atomic_write_bytes
from engine.config.data import DataConfig, DataSource
from engine.data import (
    DataSchema,
    Dataset,
    InputSpec,
    ModelSignature,
    OutputSpec,
    resolve_path,
)
from engine.spec_graph import resolve
from engine.streaming import Stream, open_data
from modelspec.check import SpecReport
from modelspec.errors import RunError
from modelspec.infer import infer

if TYPE_CHECKING:
    from engine.saving import Artifact

SPEC_FILE = "spec.yaml"


SCHEMA_KEY = "data_schema"


RUNS_DIR = "runs"


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
        raise RunError(f"{report.path}: the model could not be resolved")
    compile_section = dict((report.data or {}).get("compile") or {})
    inputs = tuple(InputSpec(g.name, tuple(g.shape), g.dtype) for g in report.graph.inputs)
    outputs = []
    for name in report.model.outputs:
        shape = report.model.shapes.get(name)
        if not isinstance(shape, tuple):
            raise RunError(f"{report.path}: the shape of output {name!r} is unknown")
        loss, from_logits = _loss_of(compile_section, name)
        outputs.append(OutputSpec(name, tuple(shape[1:]), loss, from_logits))
    return ModelSignature(inputs, tuple(outputs))


@dataclass
class RunData:
    """The data of a run, fitted to the model: train, optional validation and test, the schema."""

    train: Dataset | Stream
    schema: DataSchema
    validation: Dataset | Stream | None = None
    test: Dataset | Stream | None = None


def load_run_data(
    config: DataConfig, base_dir: Path, signature: ModelSignature, dtype: str
) -> RunData:
    """Load and check every split before training starts, the training split first."""
    if config.train is None:
        raise RunError("`train` needs `data.train`")
    train, schema = open_data(config.train, base_dir, signature, dtype=dtype)
    run = RunData(train, schema)
    if config.validation is not None:
        run.validation, _ = open_data(config.validation, base_dir, signature, schema, dtype=dtype)
    if config.test is not None:
        run.test, _ = open_data(config.test, base_dir, signature, schema, dtype=dtype)
    return run


def model_inputs(dataset: Dataset | Stream, signature: ModelSignature) -> Any:
    """A single array for a single-input model, else a dict keyed by input name; a Stream as
    it is (it carries its labels)."""
    if isinstance(dataset, Stream):
        return dataset
    if len(signature.inputs) == 1:
        return dataset.x[signature.inputs[0].name]
    return dataset.x


def model_targets(dataset: Dataset | Stream, signature: ModelSignature) -> Any:
    if isinstance(dataset, Stream):
        return None
    if len(signature.outputs) == 1:
        return dataset.y[signature.outputs[0].name]
    return dataset.y


def validation_data(run: RunData, signature: ModelSignature) -> tuple[Any, Any] | None:
    """fit's `validation_data` for the run's validation set, if it has one."""
    if run.validation is None:
        return None
    return model_inputs(run.validation, signature), model_targets(run.validation, signature)


def as_outputs(predictions: Any, signature: ModelSignature) -> dict[str, np.ndarray]:
    if isinstance(predictions, Mapping):
        return {name: np.asarray(value) for name, value in predictions.items()}
    if isinstance(predictions, list | tuple):
        return {s.name: np.asarray(p) for s, p in zip(signature.outputs, predictions, strict=True)}
    return {signature.outputs[0].name: np.asarray(predictions)}


def build_model(spec_data: dict[str, Any]) -> Any:
    from engine.build import from_spec

    return from_spec(spec_data)


def fit_arguments(
    fit: dict[str, Any], run_dir: Path, schema: DataSchema, writes: bool = True
) -> dict[str, Any]:
    """`model.fit` keyword arguments from the spec's `fit` section (callback files in the run).

    Without `writes` (a data-parallel rank other than 0) callbacks that write files are left
    out: rank 0 alone writes the run.
    """
    from engine.config.fit import FitConfig
    from engine.spec_callbacks import FILE_ARGUMENTS
    from engine.train.loops import fit_arguments

    section = dict(fit)
    if section.get("class_weight"):
        section["class_weight"] = _class_weight_ids(section["class_weight"], schema)
    try:
        config = FitConfig.model_validate(section)
    except ValidationError as exc:
        raise RunError(f"invalid `fit` section: {exc}") from exc
    if not writes:
        config.callbacks = [
            c for c in config.callbacks if not set(type(c).model_fields) & set(FILE_ARGUMENTS)
        ]
    arguments = fit_arguments(config, run_dir)
    del arguments["verbose"]
    return arguments


def _class_weight_ids(weights: Mapping[Any, float], schema: DataSchema) -> dict[Any, float]:
    """`class_weight` may name classes by their original (string) labels."""
    classes = next(iter(schema.classes.values()), []) if len(schema.classes) == 1 else []
    ids = {label: i for i, label in enumerate(classes)}
    unknown = [k for k in weights if isinstance(k, str) and k not in ids]
    if unknown:
        raise RunError(f"fit.class_weight: unknown classes {unknown}; known: {classes}")
    return {ids.get(k, k) if isinstance(k, str) else k: v for k, v in weights.items()}


def evaluate_model(
    model: Any, dataset: Dataset | Stream, signature: ModelSignature, batch_size: int
) -> dict[str, float]:
    result = model.evaluate(
        model_inputs(dataset, signature),
        model_targets(dataset, signature),
        batch_size=batch_size,
        return_dict=True,
    )
    return {name: float(value) for name, value in result.items()}


def _flat_metrics(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """{"loss", "val_loss", "test_loss", ...}: Keras's prefixes, for the artifact's metadata."""
    prefixes = {"train": "", "validation": "val_", "test": "test_"}
    return {prefixes[split] + k: v for split, values in results.items() for k, v in values.items()}


def save_run(
    model: Any, run_dir: Path, run: RunData, results: Mapping[str, Mapping[str, float]]
) -> None:
    """The artifact, with the data schema (columns and class labels) in its metadata."""
    from engine.saving import fingerprint_file, model_artifact, write_artifact

    fingerprints = {
        split: fingerprint_file(_source_path(dataset))
        for split, dataset in (
            ("train", run.train),
            ("validation", run.validation),
            ("test", run.test),
        )
        if dataset is not None and Path(_source_path(dataset)).is_file()
    }
    artifact = model_artifact(
        model,
        label_maps=run.schema.classes,
        data_fingerprints=fingerprints,
        final_metrics=_flat_metrics(results),
    )
    artifact.metadata[SCHEMA_KEY] = run.schema.model_dump()
    write_artifact(run_dir, artifact)


def _source_path(dataset: Dataset | Stream) -> str:
    return dataset.path if isinstance(dataset, Stream) else dataset.source


def load_trained(
    model_path: Path, artifact: Artifact | None = None
) -> tuple[Any, DataSchema | None]:
    """A trained model and the data schema stored with it (from `artifact`, if already read)."""
    from engine.loading import model_from_artifact

    model = model_from_artifact(artifact or read_stored(model_path)[0], str(model_path))
    stored = (getattr(model, "artifact_metadata", None) or {}).get(SCHEMA_KEY)
    return model, DataSchema.model_validate(stored) if stored else None


def read_stored(model_path: Path) -> tuple[Artifact, bytes]:
    """The verified artifact of a run folder or model file, and the archive's bytes (read
    once, for its checksum)."""
    from engine.saving import read_artifact_bytes

    if not model_path.exists():
        raise RunError(f"{model_path}: no such run folder or model file", 2)
    return read_artifact_bytes(model_path)


def stored_report(model_path: Path, artifact: Artifact | None = None) -> SpecReport:
    """The resolved graph and shapes of the model stored in an artifact (a run folder or file;
    `artifact`, if already read).

    The stored `model` mapping is the Model's own config (it carries keys such as the model's
    name that a hand-written spec does not), so it is resolved and inferred, not linted.
    """
    from engine.layers import registry

    spec = (artifact or read_stored(model_path)[0]).spec
    graph, problems = resolve(spec.get("model"))
    model, shape_problems = infer(graph, model_path.stem, str(spec.get("dtype", "float32")))
    custom = sorted({str(n.config.get("type")) for n in graph.nodes} - set(registry.all_layers()))
    if custom:
        raise RunError(
            f"{model_path}: the model has custom Python layers ({', '.join(custom)}), which the "
            "command line cannot run; load it with engine.load_model(path, custom_objects={...})",
            2,
        )
    if problems or shape_problems or not model.complete:
        raise RunError(f"{model_path}: the stored model does not resolve", 2)
    return SpecReport(str(model_path), data=spec, graph=graph, model=model)


def portable_spec(data: dict[str, Any], spec_dir: Path, run_dir: Path) -> dict[str, Any]:
    """The spec as trained, its data paths rewritten relative to the run folder."""
    saved = json.loads(json.dumps(data))
    for split in (saved.get("data") or {}).values():
        if isinstance(split, dict) and isinstance(split.get("path"), str):
            absolute = resolve_path(split["path"], spec_dir).resolve()
            split["path"] = os.path.relpath(absolute, run_dir.resolve())
    return saved


def write_spec(data: dict[str, Any], spec_dir: Path, run_dir: Path) -> None:
    text = yaml.safe_dump(portable_spec(data, spec_dir, run_dir), sort_keys=False)
    atomic_write_bytes(run_dir / SPEC_FILE, text.encode("utf-8"))


def run_spec(model_path: Path) -> Path:
    """The spec saved in a run folder (or beside a model file)."""
    folder = model_path if model_path.is_dir() else model_path.parent
    spec = folder / SPEC_FILE
    if not spec.is_file():
        raise RunError(f"{model_path}: not a run folder (no {SPEC_FILE} in it)", 2)
    return spec


def data_config(data: Mapping[str, Any], spec: Path) -> DataConfig:
    try:
        return DataConfig.model_validate(data.get("data") or {})
    except ValueError as exc:
        raise RunError(f"{spec}: invalid `data` section: {exc}") from exc


def history_results(history: Any) -> dict[str, dict[str, float]]:
    """The last epoch's values, split into train and validation columns."""
    logs = getattr(history, "history", None) or {}
    train = {k: float(v[-1]) for k, v in logs.items() if v and not k.startswith("val_")}
    validation = {k[4:]: float(v[-1]) for k, v in logs.items() if v and k.startswith("val_")}
    return {"train": train, "validation": validation}


# A streamed run also checkpoints inside each epoch: every tenth of it, at least this many steps.
MIN_STEPS_BETWEEN_CHECKPOINTS = 50


def checkpointer(run: RunData, run_dir: Path, steps: int, writes: bool = True) -> Any:
    """The run folder's checkpoints: after each epoch, and for streamed (long) training data
    also inside the epoch, so that a killed run resumes where it was. Every rank of a
    data-parallel run has one (positions are gathered from all); rank 0 alone `writes`."""
    from engine.callbacks import CheckpointCallback, StepCheckpointCallback

    if not isinstance(run.train, Stream):
        return CheckpointCallback(run_dir, writes=writes)
    every = max(MIN_STEPS_BETWEEN_CHECKPOINTS, -(-steps // 10))
    return StepCheckpointCallback(run_dir, save_freq=every, writes=writes)


def steps_per_epoch(dataset: Dataset | Stream, validation_split: float, batch_size: int) -> int:
    """Steps per epoch, as fit counts them (the validation split is the last fraction)."""
    return max(1, -(-int(len(dataset) * (1.0 - validation_split)) // batch_size))


def resume_from(model: Any, run_dir: Path, spec: Path) -> int:
    """Load the last complete checkpoint into `model`; returns the epoch to continue from.

    A run folder made from another spec has weights that do not fit the model: say which spec
    made it and what to do, not only which weight differs.
    """
    from engine.saving import WeightsMismatchError, apply_artifact, latest_checkpoint

    path, artifact = latest_checkpoint(run_dir)
    try:
        apply_artifact(model, artifact, str(path))
    except WeightsMismatchError as exc:
        raise RunError(
            f"{run_dir} was trained from spec {_made_from(run_dir, artifact.spec)}, not "
            f"{spec}: its weights do not fit this model ({exc.detail}); resume with the spec "
            "that made it, or train into a new folder with --out DIR",
            2,
        ) from exc
    return int((artifact.training_state or {}).get("epoch", 0))


def _made_from(run_dir: Path, artifact_spec: dict[str, Any]) -> str:
    """`'iris_mlp' (saved as runs/iris_mlp/spec.yaml)`, as far as the run folder tells."""
    name = artifact_spec.get("name") or (artifact_spec.get("model") or {}).get("name")
    saved = run_dir / SPEC_FILE
    where = f" (saved as {saved})" if saved.is_file() else ""
    return f"{name!r}{where}" if name else f"another spec{where}"


def default_run_dir(data: Mapping[str, Any], spec: Path) -> Path:
    """`runs/<name>/` relative to the current directory, as `train` writes it."""
    return Path(RUNS_DIR) / str(data.get("name") or spec.stem)


def evaluation_source(
    data: Mapping[str, Any], spec: Path, data_file: Path | None
) -> tuple[DataSource, Path]:
    if data_file is not None:
        return DataSource(path=str(data_file)), Path.cwd()
    test = data_config(data, spec).test
    if test is None:
        raise RunError(f"{spec}: no `data.test` to evaluate on; give --data FILE", 2)
    return test, spec.parent


@contextlib.contextmanager
def warning_lines(err: Any) -> Iterator[None]:
    """The engine's warnings during a run (skipped bad data, a callback monitoring a metric that
    is not logged) said as one `warning:` line each on stderr, not as Python's warning with a
    source line; every skip is told, other warnings once per place."""
    import warnings

    from engine.streaming import BadDataWarning

    shown = warnings.showwarning

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, UserWarning):
            err.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)
        else:
            shown(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("default", UserWarning)
        warnings.simplefilter("always", BadDataWarning)
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def device(name: str) -> Iterator[None]:
    """Run the block on the named device (cpu or gpu); an unknown name is bad usage."""
    from engine import backend

    try:
        device = backend.canonical_device(name)
    except ValueError as exc:
        raise RunError(str(exc), 2) from exc
    with backend.use(device):
        yield
