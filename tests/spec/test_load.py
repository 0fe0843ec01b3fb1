"""The loader: positions of keys and values, syntax errors, duplicate keys, `--set` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelspec.check import check_spec
from modelspec.load import load_spec, parse

TEXT = """name: demo
model:
  layers:
    - {type: Dense, units: 4, input_shape: [3]}
    - type: Dense
      units: 1
fit:
  epochs: 3
"""


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        (("name",), (1, 1), (1, 7)),
        (("model", "layers"), (3, 3), (4, 5)),
        (("model", "layers", 0, "units"), (4, 21), (4, 28)),
        (("model", "layers", 0, "input_shape", 0), None, (4, 45)),
        (("model", "layers", 1, "units"), (6, 7), (6, 14)),
        (("fit", "epochs"), (8, 3), (8, 11)),
    ],
)
def test_source_map_positions(
    path: tuple[Any, ...], key: tuple[int, int] | None, value: tuple[int, int]
) -> None:
    _, source_map, problems = parse(TEXT)
    assert problems == []
    assert source_map.keys.get(path) == key
    assert source_map.values[path] == value


def test_locate_falls_back_to_the_nearest_written_ancestor() -> None:
    _, source_map, _ = parse(TEXT)
    assert source_map.locate(("model", "layers", 1, "activation")) == (5, 7)
    assert source_map.locate(("fit", "epochs"), prefer_key=True) == (8, 3)
    assert source_map.locate(("nowhere", 3)) == (1, 1)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("model: [1, 2\n", 2, 1),
        ("model:\n  - a\n b: 1\n", 3, 2),
        ("a: 1\n---\nb: 2\n", 2, 1),
        ("a: \x07\n", 1, 1),
        ("a: !!python/object:os.system 1\n", 1, 4),
    ],
)
def test_syntax_errors_are_diagnostics(text: str, line: int, column: int) -> None:
    data, _, problems = parse(text)
    assert data is None
    assert [(p.code, p.line, p.column) for p in problems] == [("E001", line, column)]


def test_duplicate_keys() -> None:
    _, _, problems = parse("a: 1\nb: 2\na: 3\n")
    assert [(p.code, p.line, p.column, p.key) for p in problems] == [("E004", 3, 1, ("a",))]


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        (["fit.epochs=5"], lambda d: d["fit"]["epochs"] == 5),
        (["model.layers.1.units=7"], lambda d: d["model"]["layers"][1]["units"] == 7),
        (["compile.optimizer=sgd"], lambda d: d["compile"] == {"optimizer": "sgd"}),
        ({"fit.batch_size": 8}, lambda d: d["fit"]["batch_size"] == 8),
        (["name=[a, b]"], lambda d: d["name"] == ["a", "b"]),
    ],
)
def test_overrides(overrides: Any, check: Any, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(TEXT)
    data, _, problems = load_spec(spec, overrides)
    assert problems == [] and check(data)


@pytest.mark.parametrize("override", ["fit.epochs", "model.layers.9.units=1", "name.x=1", "=3"])
def test_bad_overrides(override: str, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(TEXT)
    _, _, problems = load_spec(spec, [override])
    assert [p.code for p in problems] == ["E005"]


def test_override_reaches_validation(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(TEXT)
    report = check_spec(spec, ["fit.epochs=0"])
    assert [(d.code, d.origin) for d in report.diagnostics] == [("E103", "fit.epochs=0")]


@pytest.mark.parametrize("content", [b"\xff\xfe\x00bad", None])
def test_unreadable(content: bytes | None, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    if content is not None:
        spec.write_bytes(content)
    _, _, problems = load_spec(spec)
    assert [p.code for p in problems] == ["E002"]


def test_alias_bombs_are_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    data, _, problems = parse("\n".join(lines) + "\n")
    assert data is None and [p.code for p in problems] == ["E001"]
    assert "aliases" in problems[0].message
