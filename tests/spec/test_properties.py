"""Property tests: any text, any YAML document and any mutation of a valid spec gives
diagnostics or a result, never an exception, and every diagnostic is placed inside the file."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelspec.check import check_text
from modelspec.diagnostics import CODES

VALID = {
    "name": "prop",
    "model": {
        "type": "functional",
        "inputs": [{"name": "x", "shape": [4]}, {"name": "y", "shape": [4]}],
        "layers": [
            {"name": "a", "type": "Dense", "units": 8, "activation": "relu", "inputs": "x"},
            {"name": "b", "shares": "a", "inputs": "y"},
            {"name": "c", "type": "Concatenate", "inputs": ["a", "b"]},
            {"name": "out", "type": "Dense", "units": 3, "activation": "softmax"},
        ],
        "outputs": ["out"],
    },
    "compile": {
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 2, "batch_size": 8, "validation_split": 0.25},
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["Dense", "relu", "adam", "x", "a", "inputs", "shares", "type", "units"]),
)
keys = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["model", "layers", "type", "inputs", "outputs", "shape", "units", "loss"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)
PROPS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI never flakes
    suppress_health_check=[HealthCheck.too_slow],
)


def _assert_well_formed(text: str) -> None:
    report = check_text(text, "p.yaml")
    lines = max(1, text.count("\n") + 1)
    for d in report.diagnostics:
        assert d.code in CODES
        assert 1 <= d.line <= lines + 1 and d.column >= 1
        assert d.severity == ("error" if d.code.startswith("E") else "warning")


@PROPS
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    _assert_well_formed(text)


@PROPS
@given(documents)
def test_any_yaml_document(doc: Any) -> None:
    _assert_well_formed(yaml.safe_dump(doc))


@PROPS
@given(documents)
def test_any_model_section(model: Any) -> None:
    _assert_well_formed(yaml.safe_dump({"model": model}))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*prefix, i))
    return found


def _mutate(doc: dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> None:
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)


@PROPS
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(["delete", "replace", "rename"]),
            documents,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_valid_spec(mutations: list[tuple[int, str, Any]]) -> None:
    doc = copy.deepcopy(VALID)
    for index, action, value in mutations:
        paths = _paths(doc)
        if not paths:
            break
        _mutate(doc, paths[index % len(paths)], action, value)
    _assert_well_formed(yaml.safe_dump(doc))


def test_the_unmutated_spec_is_clean() -> None:
    report = check_text(yaml.safe_dump(VALID))
    assert report.diagnostics == []
    assert report.model is not None and report.model.total("params") == 40 + 51


LAYER_ENTRIES = [
    {"type": "Dense", "units": 3},
    {"type": "Conv1D", "filters": 2, "kernel_size": 3},
    {"type": "Conv2D", "filters": 2, "kernel_size": 2, "padding": "same"},
    {"type": "MaxPooling2D"},
    {"type": "GlobalAveragePooling1D"},
    {"type": "Flatten"},
    {"type": "Reshape", "target_shape": [2, -1]},
    {"type": "Permute", "dims": [2, 1]},
    {"type": "RepeatVector", "n": 2},
    {"type": "LSTM", "units": 2, "return_sequences": True},
    {"type": "GRU", "units": 2},
    {"type": "Embedding", "input_dim": 5, "output_dim": 2},
    {"type": "BatchNormalization"},
    {"type": "Dropout", "rate": 0.1},
    {"type": "Lambda", "expression": "sum(x, axis=1)"},
    {"type": "Bidirectional", "layer": {"type": "SimpleRNN", "units": 2}},
    {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
]


@PROPS
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=4),
    st.lists(st.sampled_from(LAYER_ENTRIES), min_size=1, max_size=5),
)
def test_random_layer_stacks(shape: list[int], layers: list[dict[str, Any]]) -> None:
    """Any stack of real layers on any input shape: a table or shape diagnostics, no crash."""
    doc = {"model": {"layers": [{"type": "Input", "shape": shape}, *layers]}}
    _assert_well_formed(yaml.safe_dump(doc))
