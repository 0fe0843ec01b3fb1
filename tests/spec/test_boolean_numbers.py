"""YAML's yes/no/on/off/true/false are booleans, and pydantic's lax mode would read True as 1:
a boolean where a number belongs is one error at its key (no follow-on errors from the
graph or from other union members), a boolean where one belongs is kept."""

from __future__ import annotations

import pytest

from modelspec.check import check_text

SPEC = """\
model:
  type: sequential
  layers:
    - {{type: Input, shape: {shape}}}
    - {{type: Conv2D, filters: 4, kernel_size: {kernel}, use_bias: {bias}}}
    - {{type: Flatten}}
    - {{type: Dense, units: {units}, kernel_initializer: {{type: random_normal, stddev: {std}}}}}
compile: {{optimizer: {{type: adam, learning_rate: {rate}}}, loss: mse}}
fit: {{epochs: {epochs}, batch_size: 8, shuffle: {shuffle}}}
data: {{train: {{path: d.csv, target: t, shuffle_buffer: {buffer}}}}}
"""
GOOD = {
    "shape": "[8, 8, 1]",
    "kernel": "3",
    "bias": "no",
    "units": "2",
    "rate": "0.01",
    "epochs": "2",
    "shuffle": "off",
    "buffer": "64",
    "std": "0.1",
}


def _errors(**changes: str) -> list[str]:
    report = check_text(SPEC.format(**{**GOOD, **changes}), "s.yaml")
    # E502: the data file is not there, which this test does not need
    return [f"{d.code} {d.message}" for d in report.errors if d.code != "E502"]


def test_booleans_where_booleans_belong_are_kept() -> None:
    assert _errors() == []


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("shape", "[8, true, 1]", "model.layers[0].shape[1]"),
        ("units", "yes", "model.layers[3].units"),
        ("kernel", "[3, true]", "model.layers[1].kernel_size"),
        ("rate", "on", "compile.optimizer.learning_rate"),
        ("epochs", "true", "fit.epochs"),
        ("buffer", "no", "data.train.shuffle_buffer"),
        ("std", "yes", "model.layers[3].kernel_initializer.stddev"),
    ],
)
def test_a_boolean_for_a_number_is_an_error_at_its_key(key: str, value: str, path: str) -> None:
    (error,) = _errors(**{key: value})
    assert error.startswith("E103 ") and path in error, error
    assert "True" in error or "False" in error, error


@pytest.mark.parametrize(
    ("section", "entry", "path"),
    [
        ("fit: {", "class_weight: {0: yes, 1: 2}, ", "fit.class_weight"),
        ("compile: {", "loss_weights: {dense: on}, ", "compile.loss_weights"),
    ],
)
def test_a_boolean_in_a_mapping_of_numbers_is_an_error_at_its_key(
    section: str, entry: str, path: str
) -> None:
    text = SPEC.format(**GOOD).replace(section, section + entry)
    report = check_text(text, "s.yaml")
    errors = [f"{d.code} {d.message}" for d in report.errors if d.code != "E502"]
    assert errors and all(e.startswith("E103 ") for e in errors), errors
    assert any(path in e and "True" in e for e in errors), errors


def test_numbers_in_a_mapping_of_numbers_are_kept() -> None:
    text = SPEC.format(**GOOD).replace("fit: {", "fit: {class_weight: {0: 1, 1: 2.5}, ")
    assert [d for d in check_text(text, "s.yaml").errors if d.code != "E502"] == []
