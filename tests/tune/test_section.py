"""`lint` on the `tune` section: each problem located at its key, with its code."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from modelspec.check import SpecReport, check_document
from modelspec.load import parse
from tests.tune.conftest import SPEC


def _lint(tune: dict[str, Any], **changes: Any) -> list[tuple[str, tuple[Any, ...], str]]:
    """(code, key, the line it points at) of every diagnostic."""
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    spec["tune"] = tune
    text = yaml.safe_dump(spec, sort_keys=False)
    data, source_map, _ = parse(text, "spec.yaml")
    report = check_document(data, source_map, SpecReport("spec.yaml"), check_paths=False)
    lines = text.splitlines()
    return [(d.code, d.key, lines[d.line - 1].strip()) for d in report.diagnostics]


def _space(**entries: Any) -> dict[str, Any]:
    return {"space": {k.replace("__", "."): v for k, v in entries.items()}}


def test_the_example_section_is_clean() -> None:
    assert _lint(SPEC["tune"]) == []


@pytest.mark.parametrize(
    ("path", "parameter", "code"),
    [
        ("model.layers[1].unitz", {"type": "int", "low": 2, "high": 9}, "E601"),
        ("model.layers[7].units", {"type": "int", "low": 2, "high": 9}, "E601"),
        ("model.layers.1.units", {"type": "int", "low": 2, "high": 9}, None),
        ("fit.batchsize", {"type": "categorical", "choices": [8, 16]}, "E601"),
        ("fit.batch_size", {"type": "categorical", "choices": [8, 16.5]}, "E602"),
        ("model.layers[1].units", {"type": "float", "low": 2, "high": 9.5}, "E602"),
        (
            "model.layers[1].activation",
            {"type": "categorical", "choices": ["relu", "rellu"]},
            "E602",
        ),
        ("compile.optimizer.beta_1", {"type": "float", "low": 0.8, "high": 0.99}, None),
        ("model.layers[1].units", {"type": "int", "low": 9, "high": 2}, "E103"),
        (
            "compile.optimizer.learning_rate",
            {"type": "float", "low": 0, "high": 1, "log": True},
            "E103",
        ),
        ("fit.batch_size", {"type": "choice", "choices": [8]}, "E104"),
    ],
)
def test_space_entries(path: str, parameter: dict[str, Any], code: str | None) -> None:
    found = _lint({"space": {path: parameter}})
    if code is None:
        assert found == []
    else:
        ((got, key, line),) = found
        assert got == code and key[:3] == ("tune", "space", path)
        assert line.startswith(path) or code in ("E103", "E104")  # at the entry's own keys


def test_a_bare_optimizer_name_takes_its_arguments() -> None:
    compile_ = {**SPEC["compile"], "optimizer": "adam"}
    rate = {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}
    assert _lint({"space": {"compile.optimizer.learning_rate": rate}}, compile=compile_) == []


def test_grid_search_needs_countable_values() -> None:
    rate = {"type": "float", "low": 0.001, "high": 0.1}
    ((code, _, line),) = _lint(
        {"sampler": "grid", "space": {"compile.optimizer.learning_rate": rate}}
    )
    assert code == "E603" and line.startswith("compile.optimizer.learning_rate")
    stepped = {**rate, "step": 0.001}
    assert _lint({"sampler": "grid", "space": {"compile.optimizer.learning_rate": stepped}}) == []


def test_a_validation_metric_needs_validation_data() -> None:
    fit = {"epochs": 2}
    ((code, _, line),) = _lint(SPEC["tune"], fit=fit)
    assert code == "E604" and line == "tune:"
    assert _lint({**SPEC["tune"], "metric": "loss"}, fit=fit) == []
