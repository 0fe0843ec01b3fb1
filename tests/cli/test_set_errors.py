"""A `--set KEY=VALUE` mistake is reported against that override, not a line of the spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.terminal import COLOUR, run_cli


@pytest.fixture
def iris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    assert run_cli("examples", "iris_mlp").code == 0
    return tmp_path / "iris_mlp.yaml"


CASES = [
    (
        "fit.epoch=3",
        1,
        "iris_mlp.yaml: --set fit.epoch=3: E101 fit: unknown key `epoch`; did you mean "
        "'epochs'? (fix: --set fit.epochs=3)",
    ),
    (
        "fit.epochs=abc",
        1,
        "iris_mlp.yaml: --set fit.epochs=abc: E103 fit.epochs: should be a valid integer",
    ),
    (
        "compile.optimizer=adma",
        1,
        "iris_mlp.yaml: --set compile.optimizer=adma: E104 compile.optimizer: unknown name "
        "'adma'; did you mean 'adam'? (fix: --set compile.optimizer=adam)",
    ),
    (
        "fit={epoch: 3}",
        1,
        "iris_mlp.yaml: --set fit={epoch: 3}: E101 fit: unknown key `epoch`; did you mean "
        "'epochs'? Found",
    ),
    (
        "model.layers.9.units=3",
        2,
        "iris_mlp.yaml: --set model.layers.9.units=3: E005 'model.layers.9': no list item '9'",
    ),
]


@COLOUR
@pytest.mark.parametrize(("override", "code", "expected"), CASES, ids=[c[0] for c in CASES])
def test_set_error_names_the_override(
    iris: Path, override: str, code: int, expected: str, colour: bool
) -> None:
    outcome = run_cli("train", "iris_mlp.yaml", "--set", override, colour=colour)
    assert outcome.code == code
    flat = " ".join(outcome.stderr.split())
    assert expected in flat
    assert not re.search(r"iris_mlp\.yaml:\d", flat)


def test_set_error_in_json_carries_the_origin(iris: Path) -> None:
    from modelspec.check import check_spec

    (found,) = check_spec(iris, ["fit.epoch=3"]).diagnostics
    record = found.as_json()
    assert record["origin"] == "--set fit.epoch=3"
    assert record["did_you_mean"] == "epochs"
    assert record["fix"] == "--set fit.epochs=3"
