"""YAML syntax errors caused by tabs and indentation say so, and say how to fix them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.terminal import COLOUR, run_cli

CASES = [
    (
        "model:\n\ttype: sequential\n",
        "2:1: E001 YAML syntax error: a tab character indents line 2; YAML indents with spaces "
        "only (fix: replace the tab with spaces",
    ),
    (
        "model:\n  type: sequential\n  layers:\n    - type: Dense\n     units: 3\n",
        "5:6: E001 YAML syntax error: line 5 is indented by 5 spaces and line 4 by 4 spaces, so "
        "YAML cannot tell which mapping or list it belongs to (fix: indent the keys of one "
        "mapping",
    ),
    (
        "model:\n  type: sequential\n layers: []\n",
        "3:2: E001 YAML syntax error: line 3 is indented by 1 space and line 2 by 2 spaces",
    ),
    (
        "name: a: b\nmodel: {type: sequential}\n",
        "1:8: E001 YAML syntax error: a second ':' on line 1 (fix: quote a value that contains",
    ),
]


@COLOUR
@pytest.mark.parametrize(("text", "expected"), CASES, ids=["tab", "deeper", "shallower", "colon"])
def test_yaml_mistake_names_the_cause_and_fix(
    text: str, expected: str, colour: bool, tmp_path: Path
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    outcome = run_cli("lint", str(spec), colour=colour)
    assert outcome.code == 1
    assert f"{spec}:{expected}" in " ".join(outcome.stdout.split())


def test_other_syntax_errors_keep_the_parser_words(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("model:\n  layers:\n  - {type: Dense\n")
    outcome = run_cli("lint", str(spec))
    assert "did not find expected ',' or '}'" in outcome.stdout
    assert "(fix:" not in outcome.stdout


def test_a_legal_tab_inside_brackets_is_not_blamed(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("model:\n  layers: [1,\n\t2]\n  foo: : bar\n")
    outcome = run_cli("lint", str(spec))
    assert f"{spec}:4:8: E001 YAML syntax error: a second ':' on line 4" in outcome.stdout
    assert "tab" not in outcome.stdout.split(": E001 ")[1]
