"""Every diagnostic code, produced by a small spec and placed at its line:column; docs complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.layers import registry
from modelspec.check import check_spec, check_text
from modelspec.diagnostics import CODES, did_you_mean, explain, render_docs

ROOT = Path(__file__).resolve().parents[2]
MLP = """model:
  layers:
    - {type: Dense, units: 4, activation: relu, input_shape: [3]}
    - {type: Dense, units: 1, activation: sigmoid}
"""

# (id, spec text, [(code, line, column, text the message must contain)])
CASES: list[tuple[str, str, list[tuple[str, int, int, str]]]] = [
    ("yaml syntax", "model:\n  layers: [1, 2\n", [("E001", 3, 1, "YAML syntax error")]),
    ("not a mapping", "- 1\n- 2\n", [("E003", 1, 1, "mapping")]),
    ("empty", "", [("E003", 1, 1, "empty file")]),
    ("duplicate key", MLP + "seed: 1\nseed: 2\n", [("E004", 6, 1, "duplicate key 'seed'")]),
    (
        "unknown key with suggestion",
        MLP.replace("units: 1,", "unit: 1,"),
        [("E101", 4, 21, "unknown key `unit`; did you mean 'units'?")],
    ),
    ("unknown top-level key", MLP + "fitt: {}\n", [("E101", 5, 1, "did you mean 'fit'?")]),
    (
        "missing key",
        MLP.replace("units: 1, ", ""),
        [("E102", 4, 7, "missing required key `units`")],
    ),
    ("missing model", "name: x\n", [("E102", 1, 1, "`model`")]),
    ("invalid value", MLP.replace("units: 1,", "units: -3,"), [("E103", 4, 28, "greater than 0")]),
    (
        "unknown layer type",
        MLP.replace("type: Dense, units: 1", "type: Dence, units: 1"),
        [("E104", 4, 14, "unknown layer type 'Dence'; did you mean 'Dense'?")],
    ),
    (
        "unknown activation",
        MLP.replace("sigmoid", "sigmod"),
        [("E104", 4, 43, "did you mean 'sigmoid'?")],
    ),
    (
        "unknown optimizer and loss",
        MLP + "compile: {optimizer: adamm, loss: binary_crossentropyy}\n",
        [
            ("E104", 5, 22, "did you mean 'adam'?"),
            ("E104", 5, 35, "did you mean 'binary_crossentropy'?"),
        ],
    ),
    ("version", "version: 2\n" + MLP, [("E105", 1, 10, "version")]),
    (
        "bad input shape, and nothing that follows from it",
        """model:
  type: functional
  inputs: [{name: x, shape: [true]}]
  layers:
    - {name: out, type: Dense, units: 1, inputs: x}
  outputs: [out]
""",
        [("E103", 3, 30, "shape[0]: should be a valid integer; got True")],
    ),
    (
        "bad learning rate, not a bad optimizer",
        MLP + "compile: {optimizer: {type: adam, learning_rate: [0.1]}, loss: mse}\n",
        [("E103", 5, 50, "learning_rate: should be a valid number; got list")],
    ),
    (
        "undefined name",
        """model:
  type: functional
  inputs: [{name: x, shape: [3]}]
  layers:
    - {name: h, type: Dense, units: 2}
    - {name: out, type: Dense, units: 1, inputs: hh}
  outputs: [out]
""",
        [("E201", 6, 50, "did you mean 'h'?")],
    ),
    (
        "shape mismatch",
        """model:
  layers:
    - {type: Input, shape: [8, 8, 3]}
    - {type: Conv2D, filters: 4, kernel_size: 3}
    - {type: Conv1D, filters: 4, kernel_size: 3}
""",
        [("E301", 5, 7, "conv1d")],
    ),
    (
        "shared layer on another shape",
        """model:
  type: functional
  inputs: [{name: a, shape: [3]}, {name: b, shape: [5]}]
  layers:
    - {name: enc, type: Dense, units: 2, inputs: a}
    - {name: enc_b, shares: enc, inputs: b}
    - {name: out, type: Add, inputs: [enc, enc_b]}
  outputs: [out]
""",
        [("E302", 6, 42, "built for input shape (None, 3)")],
    ),
    (
        "merge mismatch",
        """model:
  type: functional
  inputs: [{name: a, shape: [3]}, {name: b, shape: [5]}]
  layers:
    - {name: out, type: Add, inputs: [a, b]}
  outputs: [out]
""",
        [("E303", 5, 7, "Add 'out'")],
    ),
    (
        "two inputs into a single-input layer",
        """model:
  type: functional
  inputs: [{name: a, shape: [3]}, {name: b, shape: [3]}]
  layers:
    - {name: out, type: Dense, units: 2, inputs: [a, b]}
  outputs: [out]
""",
        [("E306", 5, 50, "takes one input")],
    ),
    (
        "binary crossentropy on softmax",
        MLP.replace("units: 1, activation: sigmoid", "units: 10, activation: softmax")
        + "compile: {loss: binary_crossentropy}\n",
        [("E401", 5, 17, "10-way softmax")],
    ),
    (
        "sparse labels on one unit",
        MLP + "compile: {loss: sparse_categorical_crossentropy}\n",
        [("E401", 5, 17, "one unit")],
    ),
    (
        "from_logits after sigmoid",
        MLP + "compile: {loss: {type: binary_crossentropy, from_logits: true}}\n",
        [("W402", 5, 58, "already ends in sigmoid")],
    ),
    (
        "crossentropy on a linear output",
        MLP.replace(", activation: sigmoid", "") + "compile: {loss: binary_crossentropy}\n",
        [("W405", 5, 17, "has no activation")],
    ),
    (
        "metric the loss cannot support",
        MLP + "compile: {loss: binary_crossentropy, metrics: [sparse_categorical_accuracy]}\n",
        [("E403", 5, 48, "needs sparse labels")],
    ),
    (
        "loss keyed by a non-output",
        MLP + "compile: {loss: {dense_9: mse}}\n",
        [("E404", 5, 18, "'dense_9'")],
    ),
    (
        "validation split",
        MLP + "fit: {validation_split: 1.5}\n",
        [("E501", 5, 25, "validation_split")],
    ),
    (
        "missing data file",
        MLP + "data: {train: {path: missing.csv, target: y}}\n",
        [("E502", 5, 22, "missing.csv does not exist")],
    ),
    (
        "unsafe lambda",
        """model:
  layers:
    - {type: Input, shape: [3]}
    - {type: Lambda, expression: "__import__('os').system('true')"}
""",
        [("E304", 4, 34, "")],
    ),
    (
        "normalization after a weighted layer",
        """model:
  layers:
    - {type: Input, shape: [3]}
    - {type: Dense, units: 2}
    - {type: Normalization}
""",
        [("E305", 5, 7, "adapts")],
    ),
    (
        "tune path and value",
        MLP
        + """fit: {validation_split: 0.2}
tune:
  space:
    model.layers[1].unitz: {type: int, low: 1, high: 4}
    model.layers[0].units: {type: float, low: 1, high: 4.5}
""",
        [
            ("E601", 8, 5, "unknown key `unitz`; did you mean 'units'?"),
            ("E602", 9, 5, "may set 4.5"),
        ],
    ),
    (
        "tune grid without validation data",
        MLP
        + """tune:
  sampler: grid
  space:
    compile.optimizer.learning_rate: {type: float, low: 0.001, high: 0.1}
""",
        [("E604", 5, 1, "no validation data"), ("E603", 8, 5, "continuous range")],
    ),
]


def _needs(text: str) -> set[str]:
    return {t for t in ("Lambda", "Normalization") if f"type: {t}" in text}


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES]
)
def test_diagnostic_codes(
    text: str, expected: list[tuple[str, int, int, str]], tmp_path: Path
) -> None:
    missing = _needs(text) - set(registry.all_layers())
    if missing:
        pytest.skip(f"layer types not registered yet: {sorted(missing)}")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    report = check_spec(spec)
    got = [(d.code, d.line, d.column) for d in report.diagnostics]
    assert got == [(c, line, col) for c, line, col, _ in expected], report.diagnostics
    for d, (*_, fragment) in zip(report.diagnostics, expected, strict=True):
        assert fragment in d.message
        assert d.path == str(spec)
        assert d.severity == ("error" if d.code.startswith("E") else "warning")


def test_graph_codes_reach_the_file() -> None:
    text = """model:
  type: functional
  inputs: [{name: x, shape: [3]}]
  layers:
    - {name: out, type: Dense, units: 1}
    - {name: dead, type: Dense, units: 1, inputs: x}
  outputs: [out]
"""
    report = check_text(text)
    assert [(d.code, d.line, d.column) for d in report.diagnostics] == [("W201", 6, 7)]
    assert report.ok() and not report.ok(strict=True)


def test_unreadable_file(tmp_path: Path) -> None:
    report = check_spec(tmp_path / "nope.yaml")
    assert [d.code for d in report.diagnostics] == ["E002"] and report.unreadable


def test_every_code_is_documented_and_exercised() -> None:
    exercised = {c for _, _, exp in CASES for c, *_ in exp}
    exercised |= {"E002", "W201"}  # tested above with files and warnings
    graph_only = {"E202", "E203", "E204", "E205", "E206", "E207", "E208", "E209", "W202", "E005"}
    assert set(CODES) == exercised | graph_only
    assert (ROOT / "docs" / "diagnostics.md").read_text() == render_docs()
    for code in CODES:
        assert explain(code).startswith(code)


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        ("Dence", ["Dense", "Dropout"], "; did you mean 'Dense'?"),
        ("unit", ["units", "activation"], "; did you mean 'units'?"),
        ("dense", ["Dense"], "; did you mean 'Dense'?"),
        ("zzz", ["Dense"], ""),
    ],
)
def test_did_you_mean(name: str, known: list[str], expected: str) -> None:
    assert did_you_mean(name, known) == expected


def test_stored_specs_can_skip_the_data_path_check() -> None:
    from modelspec.check import SpecReport, check_document
    from modelspec.load import parse

    data, source_map, _ = parse(MLP + "data: {train: {path: gone.csv, target: y}}\n")
    checked = check_document(data, source_map, SpecReport("run/spec.yaml"))
    assert [d.code for d in checked.diagnostics] == ["E502"]
    stored = check_document(data, source_map, SpecReport("run/spec.yaml"), check_paths=False)
    assert stored.diagnostics == []
