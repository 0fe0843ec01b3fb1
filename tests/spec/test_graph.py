"""engine.spec_graph: names, implicit inputs, ordering and every structural problem, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from engine.spec_graph import ProblemKind, resolve
from modelspec.diagnostics import CODES, GRAPH_PROBLEM_CODES

DENSE = {"type": "Dense", "units": 2}


def _functional(layers: list[Any], inputs: Any = None, outputs: Any = ("out",)) -> dict[str, Any]:
    model: dict[str, Any] = {"type": "functional", "layers": layers}
    model["inputs"] = inputs if inputs is not None else [{"name": "x", "shape": [3]}]
    if outputs is not None:
        model["outputs"] = list(outputs)
    return model


def test_sequential_names_and_input_as_keras_does() -> None:
    graph, problems = resolve(
        {
            "layers": [
                {"type": "Input", "shape": [4]},
                DENSE,
                {"type": "Dense", "units": 3, "name": "dense_1"},
                DENSE,
                {"type": "BatchNormalization"},
            ]
        }
    )
    assert problems == []
    assert [(g.name, g.shape, g.dtype, g.path) for g in graph.inputs] == [
        ("input_layer", (4,), "float32", ("model", "layers", 0))
    ]
    # An explicit `dense_1` is skipped by the automatic names, as Keras's unique naming does.
    assert [n.name for n in graph.nodes] == ["dense", "dense_1", "dense_2", "batch_normalization"]
    assert [n.inputs for n in graph.nodes] == [
        ["input_layer"],
        ["dense"],
        ["dense_1"],
        ["dense_2"],
    ]
    assert graph.outputs == ["batch_normalization"]
    assert graph.nodes[1].config == {"type": "Dense", "units": 3}


def test_sequential_input_shape_on_first_layer() -> None:
    graph, problems = resolve({"type": "sequential", "layers": [{**DENSE, "input_shape": [5]}]})
    assert problems == []
    assert graph.inputs[0].name == "input_layer" and graph.inputs[0].shape == (5,)
    assert graph.nodes[0].path == ("model", "layers", 0)


def test_functional_implicit_inputs_shares_and_order() -> None:
    graph, problems = resolve(
        _functional(
            [
                {"name": "a", **DENSE},
                {"name": "b", **DENSE, "inputs": "x"},
                {"name": "c", "shares": "a", "inputs": "b"},
                {"name": "out", "type": "Add", "inputs": ["a", "c"]},
            ]
        )
    )
    assert problems == []
    assert [(n.name, n.inputs, n.shares) for n in graph.nodes] == [
        ("a", ["x"], None),
        ("b", ["x"], None),
        ("c", ["b"], "a"),
        ("out", ["a", "c"], None),
    ]
    assert graph.nodes[2].config == {}


def test_forward_reference_is_reordered() -> None:
    graph, problems = resolve(
        _functional(
            [{"name": "out", **DENSE, "inputs": "h"}, {"name": "h", **DENSE, "inputs": "x"}]
        )
    )
    assert problems == []
    assert [n.name for n in graph.nodes] == ["h", "out"]


GRAPH_PROBLEMS: list[tuple[str, Any, list[tuple[str, tuple[Any, ...]]]]] = [
    (
        "undefined name with suggestion",
        _functional([{"name": "h", **DENSE}, {"name": "out", **DENSE, "inputs": "hh"}]),
        [("E201", ("model", "layers", 1, "inputs"))],
    ),
    (
        "undefined name in a list",
        _functional([{"name": "out", "type": "Add", "inputs": ["x", "nope"]}]),
        [("E201", ("model", "layers", 0, "inputs", 1))],
    ),
    (
        "duplicate name",
        _functional([{"name": "out", **DENSE}, {"name": "out", **DENSE}]),
        [("E202", ("model", "layers", 1, "name"))],
    ),
    (
        "input and layer share a name",
        _functional([{"name": "x", **DENSE}, {"name": "out", **DENSE}]),
        [("E202", ("model", "layers", 0, "name"))],
    ),
    (
        "cycle",
        _functional(
            [
                {"name": "a", **DENSE, "inputs": "b"},
                {"name": "b", **DENSE, "inputs": "a"},
                {"name": "out", **DENSE, "inputs": "b"},
            ]
        ),
        [("E203", ("model", "layers", 0, "inputs"))],
    ),
    (
        "output names nothing",
        _functional([{"name": "h", **DENSE}], outputs=["h", "missing"]),
        [("E204", ("model", "outputs", 1))],
    ),
    ("no outputs", _functional([{"name": "h", **DENSE}], outputs=None), [("E204", ("model",))]),
    (
        "first layer of a two-input model without inputs",
        _functional(
            [{"name": "out", **DENSE}],
            inputs=[{"name": "a", "shape": [2]}, {"name": "b", "shape": [2]}],
        ),
        [("E205", ("model", "layers", 0))],
    ),
    (
        "shares with arguments",
        _functional([{"name": "h", **DENSE}, {"name": "out", "shares": "h", "units": 3}]),
        [("E206", ("model", "layers", 1, "units"))],
    ),
    (
        "shares names nothing",
        _functional([{"name": "h", **DENSE}, {"name": "out", "shares": "g"}]),
        [("E206", ("model", "layers", 1, "shares"))],
    ),
    ("sequential without input", {"layers": [DENSE]}, [("E207", ("model", "layers", 0))]),
    (
        "functional without inputs",
        {"type": "functional", "layers": [{"name": "out", **DENSE}], "outputs": ["out"]},
        [("E207", ("model",))],
    ),
    ("unknown model type", {"type": "graph", "layers": []}, [("E208", ("model", "type"))]),
    ("model not a mapping", [1, 2], [("E208", ("model",))]),
    (
        "inputs in a sequential model",
        {"layers": [{**DENSE, "input_shape": [2], "inputs": "x"}]},
        [("E208", ("model", "layers", 0, "inputs"))],
    ),
    (
        "Input entry not first",
        {"layers": [{**DENSE, "input_shape": [2]}, {"type": "Input", "shape": [2]}]},
        [("E208", ("model", "layers", 1, "type"))],
    ),
    ("layer entry not a mapping", {"layers": ["Dense"]}, [("E208", ("model", "layers", 0))]),
    (
        "bad input shape",
        {"layers": [{"type": "Input", "shape": [0, "a"]}, DENSE]},
        [("E209", ("model", "layers", 0, "shape"))],
    ),
    (
        "unreachable layer",
        _functional([{"name": "out", **DENSE}, {"name": "dead", **DENSE, "inputs": "x"}]),
        [("W201", ("model", "layers", 1))],
    ),
    (
        "unused input",
        _functional(
            [{"name": "out", **DENSE, "inputs": "a"}],
            inputs=[{"name": "a", "shape": [2]}, {"name": "b", "shape": [2]}],
        ),
        [("W202", ("model", "inputs", 1))],
    ),
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [(m, e) for _, m, e in GRAPH_PROBLEMS],
    ids=[i for i, _, _ in GRAPH_PROBLEMS],
)
def test_graph_problems(model: Any, expected: list[tuple[str, tuple[Any, ...]]]) -> None:
    _, problems = resolve(model)
    assert [(GRAPH_PROBLEM_CODES[p.kind], p.path) for p in problems] == expected


def test_did_you_mean_for_undefined_names() -> None:
    _, problems = resolve(
        _functional([{"name": "hidden", **DENSE}, {"name": "out", **DENSE, "inputs": "hiden"}])
    )
    assert "did you mean 'hidden'?" in problems[0].message


def test_every_problem_kind_has_a_documented_code_of_its_severity() -> None:
    assert set(GRAPH_PROBLEM_CODES) == {k.value for k in ProblemKind}
    for kind in ProblemKind:
        code = GRAPH_PROBLEM_CODES[kind]
        assert code in CODES
        assert code.startswith("E") == kind.is_error
