"""Errors read in the order users wrote things, and a warning never hides an error."""

from __future__ import annotations

from pathlib import Path

from tests.cli.terminal import COLOUR, run_cli

FUNCTIONAL = """\
model:
  type: functional
  inputs:
    - {{name: a, shape: [4]}}
    - {{name: b, shape: [8]}}
  layers:
{layers}
  outputs: [out]
"""


def _lint(tmp_path: Path, layers: str, colour: bool) -> str:
    spec = tmp_path / "s.yaml"
    spec.write_text(FUNCTIONAL.format(layers=layers))
    outcome = run_cli("lint", str(spec), colour=colour)
    assert outcome.code == 1
    return " ".join(outcome.stdout.split())


@COLOUR
def test_merge_sizes_are_listed_in_input_order(tmp_path: Path, colour: bool) -> None:
    layers = """\
    - {name: h, type: Dense, units: 16, inputs: a}
    - {name: s, type: Add, inputs: [h, b]}
    - {name: out, type: Dense, units: 1, inputs: s}"""
    text = _lint(tmp_path, layers, colour)
    assert "cannot combine shapes [(None, 16), (None, 8)]: axis 1 has sizes [16, 8]" in text


@COLOUR
def test_unreachable_layer_reports_its_own_error_too(tmp_path: Path, colour: bool) -> None:
    layers = """\
    - {name: h, type: Dense, units: 16, inputs: [a]}
    - {name: dead, type: Conv2D, filters: 3, kernel_size: 3, inputs: h}
    - {name: join, type: Concatenate, inputs: [h, b]}
    - {name: out, type: Dense, units: 1, inputs: join}"""
    text = _lint(tmp_path, layers, colour)
    assert "s.yaml:8:7: E301 Conv2D 'dead': Conv2D needs a rank-4 input" in text
    assert "s.yaml:8:7: W201 layer 'dead' reaches no output" in text
