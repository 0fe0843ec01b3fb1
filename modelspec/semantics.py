"""Checks of meaning rather than form: losses against outputs, metrics against losses, data, fit.

Each check reads the raw data defensively (the schema reports malformed values; here they are
skipped) and yields `(code, message, key path, hint)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.layers import registry
from engine.spec_graph import SpecGraph
from modelspec.diagnostics import KeyPath
from modelspec.infer import InferredModel
from modelspec.tune import checks as tune_checks
from modelspec.validate import Finding

LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
}
# What kind of labels each loss expects; metrics are checked against it.
LABELS = {
    "binary_crossentropy": "binary",
    "hinge": "binary",
    "squared_hinge": "binary",
    "categorical_crossentropy": "categorical",
    "kl_divergence": "categorical",
    "sparse_categorical_crossentropy": "sparse",
}
METRIC_LABELS = {
    "binary_accuracy": {"binary"},
    "categorical_accuracy": {"categorical"},
    "top_k_categorical_accuracy": {"categorical"},
    "sparse_categorical_accuracy": {"sparse"},
    "sparse_top_k_categorical_accuracy": {"sparse"},
    "precision": {"binary", "categorical"},
    "recall": {"binary", "categorical"},
    "auc": {"binary", "categorical"},
}
PROBABILITY = {"sigmoid", "softmax"}
CROSSENTROPY = {
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
}


def _name(value: Any) -> str | None:
    """The name of a `name` or `{type: name, ...}` setting."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return str(value["type"])
    return None


def _is_config(value: Any, outputs: list[str]) -> bool:
    return isinstance(value, dict) and "type" in value and "type" not in outputs


def _per_output(value: Any, outputs: list[str], key: KeyPath) -> Iterator[tuple[str, Any, KeyPath]]:
    """(output, setting, key path) for a setting given once or as a map keyed by output."""
    if isinstance(value, dict) and not _is_config(value, outputs):
        for name, item in value.items():
            if name in outputs:
                yield name, item, (*key, name)
    elif value is not None:
        for name in outputs:
            yield name, value, key


def _output_facts(graph: SpecGraph, model: InferredModel, output: str) -> tuple[Any, int | None]:
    """(activation name, or None for a layer with no activation argument; last dimension)."""
    node = graph.node(output)
    owner = graph.node(node.shares) if node is not None and node.shares else node
    activation = None
    if owner is not None:
        config = owner.config
        field = getattr(registry.all_layers().get(str(config.get("type"))), "config_class", None)
        fields = field.model_fields if field is not None else {}
        if "activation" in config:
            activation = _name(config["activation"]) or "linear"
        elif "activation" in fields:
            activation = _name(fields["activation"].default) or "linear"
    shape = model.shapes.get(output)
    units = shape[-1] if isinstance(shape, tuple) and shape else None
    return activation, units


def _loss_checks(data: dict[str, Any], graph: SpecGraph, model: InferredModel) -> Iterator[Finding]:
    compile_ = data.get("compile")
    if not isinstance(compile_, dict):
        return
    outputs = list(graph.outputs)
    for output, spec, key in _per_output(compile_.get("loss"), outputs, ("compile", "loss")):
        loss = _name(spec)
        if loss is None or output not in model.shapes:
            continue
        loss = LOSS_ALIASES.get(loss, loss)
        logits = isinstance(spec, dict) and spec.get("from_logits") is True
        activation, units = _output_facts(graph, model, output)
        yield from _loss_vs_output(loss, logits, activation, units, output, key)
        yield from _metric_checks(compile_, outputs, output, loss)


def _loss_vs_output(
    loss: str, logits: bool, activation: str | None, units: int | None, output: str, key: KeyPath
) -> Iterator[Finding]:
    where = f"output {output!r}"
    if activation == "softmax" and units == 1:
        yield Finding(
            "E401",
            f"{where} is a softmax over one unit, which is always 1.0, so {loss} cannot learn",
            key,
            "use one sigmoid unit for a yes/no label, or one softmax unit per class",
        )
    elif loss == "binary_crossentropy" and activation == "softmax" and units and units > 1:
        yield Finding(
            "E401",
            f"binary_crossentropy on {where}, a {units}-way softmax: it expects independent "
            "sigmoid probabilities",
            key,
            "use sparse_categorical_crossentropy (integer labels) or categorical_crossentropy "
            "(one-hot labels)",
        )
    elif loss in ("sparse_categorical_crossentropy", "categorical_crossentropy") and units == 1:
        yield Finding(
            "E401",
            f"{loss} on {where}, which has one unit: there must be one unit per class",
            key,
            "for two classes use binary_crossentropy with one sigmoid unit",
        )
    if logits and activation in PROBABILITY:
        yield Finding(
            "W402",
            f"from_logits: true, but {where} already ends in {activation}",
            (*key, "from_logits"),
            "remove the activation or set from_logits: false",
        )
    elif loss in CROSSENTROPY and not logits and activation == "linear":
        yield Finding(
            "W405",
            f"{loss} expects probabilities, but {where} has no activation",
            key,
            f"add activation: {'sigmoid' if loss == 'binary_crossentropy' else 'softmax'}, "
            "or set from_logits: true",
        )


def _metric_checks(
    compile_: dict[str, Any], outputs: list[str], output: str, loss: str
) -> Iterator[Finding]:
    labels = LABELS.get(loss, "regression")
    for name, spec, key in _per_output(compile_.get("metrics"), outputs, ("compile", "metrics")):
        if name != output:
            continue
        items = spec if isinstance(spec, list) else [spec]
        for i, item in enumerate(items):
            metric = _name(item)
            allowed = METRIC_LABELS.get(metric or "")
            if allowed is not None and labels not in allowed:
                yield Finding(
                    "E403",
                    f"metric {metric} needs {' or '.join(sorted(allowed))} labels, but loss "
                    f"{loss} uses {labels} labels",
                    (*key, i) if isinstance(spec, list) else key,
                    "pick a metric for these labels, or just `accuracy`",
                )


def _unknown_outputs(data: dict[str, Any], graph: SpecGraph) -> Iterator[Finding]:
    compile_ = data.get("compile")
    if not isinstance(compile_, dict) or not graph.outputs:
        return
    for setting in ("loss", "loss_weights", "metrics"):
        value = compile_.get(setting)
        if not isinstance(value, dict) or _is_config(value, graph.outputs):
            continue
        for name in value:
            if name not in graph.outputs:
                yield Finding(
                    "E404",
                    f"compile.{setting} names {name!r}, which is not a model output "
                    f"({', '.join(graph.outputs)})",
                    ("compile", setting, name),
                    at_key=True,
                )


def _fit_checks(data: dict[str, Any]) -> Iterator[Finding]:
    fit = data.get("fit")
    if not isinstance(fit, dict) or "validation_split" not in fit:
        return
    value = fit["validation_split"]
    if isinstance(value, str):
        # pydantic reads the text as a number ("1e-1", "INFINITY", "nan"): check that number
        with contextlib.suppress(ValueError):
            value = float(value)
    # a bool too: pydantic reads `true` as 1.0
    if isinstance(value, (int, float)) and not 0 < value < 1:
        yield Finding(
            "E501",
            f"fit.validation_split must be between 0 and 1 (exclusive); got {value}",
            ("fit", "validation_split"),
            "e.g. 0.2 keeps the last 20% of the training data for validation",
        )


def _data_checks(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    section = data.get("data")
    if not isinstance(section, dict):
        return
    for split, source in section.items():
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            target = base / source["path"]
            if not target.exists():
                yield Finding(
                    "E502",
                    f"data.{split}.path: {source['path']} does not exist (looked for {target})",
                    ("data", split, "path"),
                    "paths are relative to the spec file's folder",
                )


def _normalization_checks(graph: SpecGraph, model: InferredModel) -> Iterator[Finding]:
    params = {r.name: r.params for r in model.rows}
    by_name = {n.name: n for n in graph.nodes}
    for node in graph.nodes:
        config = node.config
        if config.get("type") != "Normalization" or (
            config.get("mean") is not None and config.get("variance") is not None
        ):
            continue
        stack, seen = list(node.inputs), set()
        while stack:
            name = stack.pop()
            if name in seen or name not in by_name:
                continue
            seen.add(name)
            upstream = by_name[name]
            owner = upstream.shares or name
            if params.get(owner, 0) > 0:
                yield Finding(
                    "E305",
                    f"Normalization {node.name!r} adapts to the data, but {owner!r} before it "
                    "has weights, which are not trained yet when it adapts",
                    node.path,
                    "give `mean` and `variance`, or move the Normalization up to the input",
                )
                break
            stack.extend(upstream.inputs)


def check(
    data: Any, graph: SpecGraph, model: InferredModel, base: Path | None
) -> Iterator[Finding]:
    """Every semantic problem in a spec whose graph and shapes are known (as far as they are).

    Data paths are looked up relative to `base`; None skips that check.
    """
    if not isinstance(data, dict):
        return
    yield from _unknown_outputs(data, graph)
    yield from _loss_checks(data, graph, model)
    yield from _normalization_checks(graph, model)
    yield from _fit_checks(data)
    yield from tune_checks.check(data)
    if base is not None:
        yield from _data_checks(data, base)
