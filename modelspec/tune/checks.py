"""`lint`'s findings on the `tune` section that depend on the rest of the spec.

A search-space path must name a setting the spec accepts, and every value the search may write
there must be one the setting takes: each end of a range and each choice is written into a copy
of the spec and validated with the spec's own schema, so the types and names are the schema's,
never a second list. The section's own form (ranges ordered, known sampler) is the schema's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from modelspec.diagnostics import KeyPath
from modelspec.schema import spec_model
from modelspec.schema.tune import default_metric
from modelspec.tune import space
from modelspec.validate import Finding, findings

SPACE: KeyPath = ("tune", "space")
KINDS = ("float", "int", "categorical")


def _schema_findings(data: Mapping[str, Any]) -> list[Finding]:
    root = spec_model()
    try:
        root.model_validate(data)
    except ValidationError as exc:
        return findings(exc, data, root)
    return []


def _value_findings(
    data: dict[str, Any], dotted: str, value: Any, known: set[Finding]
) -> Iterator[Finding]:
    """Findings that writing `value` at `dotted` adds to the spec's own, at that path."""
    try:
        path = space.key_path(dotted)
        trial = space.resolved(data, {dotted: value})
    except space.PathError as exc:
        yield Finding("E601", f"{dotted}: {exc}", (*SPACE, dotted), at_key=True)
        return
    for item in _schema_findings(trial):
        if item not in known and item.key[: len(path)] == path:
            yield item


def _own(message: str) -> str:
    """A schema message without its leading `path: `, which the tune finding says its own way."""
    head, sep, rest = message.partition(": ")
    return rest if sep and " " not in head else message


def _path_checks(data: dict[str, Any], dotted: str, parameter: Any) -> Iterator[Finding]:
    if not isinstance(parameter, dict) or parameter.get("type") not in KINDS:
        return  # the schema reports a malformed entry
    known = set(_schema_findings({k: v for k, v in data.items() if k != "tune"}))
    for value in space.samples(parameter):
        for item in _value_findings(data, dotted, value, known):
            if item.code == "E601":
                yield item
            elif item.code == "E101":
                message = f"{dotted}: {_own(item.message)}"
                yield Finding("E601", message, (*SPACE, dotted), item.hint, True)
            else:
                message = f"{dotted}: the search may set {value!r}: {_own(item.message)}"
                yield Finding("E602", message, (*SPACE, dotted), item.hint, True)
            return


def _grid_checks(tune: dict[str, Any], parameters: dict[str, Any]) -> Iterator[Finding]:
    if tune.get("sampler") != "grid":
        return
    for dotted, parameter in parameters.items():
        continuous = isinstance(parameter, dict) and parameter.get("type") == "float"
        if continuous and not parameter.get("step"):
            yield Finding(
                "E603",
                f"{dotted}: a grid search cannot try every value of a continuous range",
                (*SPACE, dotted),
                "give the range a `step`, or list the values as `type: categorical`",
                True,
            )


def _has_validation(data: dict[str, Any]) -> bool:
    fit, sources = data.get("fit"), data.get("data")
    split = fit.get("validation_split") if isinstance(fit, dict) else None
    return bool(split) or (isinstance(sources, dict) and sources.get("validation") is not None)


def _metric_checks(data: dict[str, Any], tune: dict[str, Any]) -> Iterator[Finding]:
    metric = tune.get("metric") or default_metric(data.get("compile"))
    if isinstance(metric, str) and metric.startswith("val_") and not _has_validation(data):
        yield Finding(
            "E604",
            f"the search compares trials by {metric}, but the spec has no validation data",
            ("tune", "metric") if "metric" in tune else ("tune",),
            "set fit.validation_split (e.g. 0.2) or data.validation",
            True,
        )


def check(data: dict[str, Any]) -> Iterator[Finding]:
    """Every problem of the `tune` section against the spec it searches."""
    tune = data.get("tune")
    if not isinstance(tune, dict):
        return
    yield from _metric_checks(data, tune)
    parameters = tune.get("space")
    if not isinstance(parameters, dict):
        return
    for dotted, parameter in parameters.items():
        yield from _path_checks(data, str(dotted), parameter)
    yield from _grid_checks(tune, parameters)
