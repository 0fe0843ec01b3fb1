"""`modelspec examples`: the shipped examples are listed, and one copies out ready to train."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.terminal import COLOUR, assert_fits, run_cli

SPECS = Path(__file__).resolve().parents[2] / "specs"


@COLOUR
def test_lists_every_example_at_80_columns(colour: bool) -> None:
    outcome = run_cli("examples", colour=colour)
    assert outcome.code == 0
    assert_fits(outcome.stdout)
    for spec in SPECS.glob("*.yaml"):
        assert f" {spec.stem} " in outcome.stdout
    assert "Three-class iris classifier" in outcome.stdout


@COLOUR
def test_copies_a_spec_with_its_data_and_it_trains(
    colour: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = run_cli("examples", "iris_mlp", "--to", "mine", colour=colour)
    assert outcome.code == 0, outcome.stderr
    for relative in ("iris_mlp.yaml", "data/iris_train.csv", "data/iris_test.csv"):
        assert (tmp_path / "mine" / relative).read_bytes() == (SPECS / relative).read_bytes()
    assert "modelspec train mine/iris_mlp.yaml" in outcome.stdout
    trained = run_cli("train", "mine/iris_mlp.yaml", "--set", "fit.epochs=1", colour=colour)
    assert trained.code == 0, trained.stderr
    assert (tmp_path / "runs" / "iris_mlp" / "model.msz").is_file()


def test_copy_again_is_a_no_op_and_an_edited_spec_is_never_overwritten(
    tmp_path: Path,
) -> None:
    assert run_cli("examples", "iris_mlp", "--to", str(tmp_path)).code == 0
    assert run_cli("examples", "iris_mlp.yaml", "--to", str(tmp_path)).code == 0
    spec = tmp_path / "iris_mlp.yaml"
    spec.write_text(spec.read_text() + "# mine\n")
    outcome = run_cli("examples", "iris_mlp", "--to", str(tmp_path))
    assert outcome.code == 1
    assert "iris_mlp.yaml already exists and differs" in outcome.stderr
    assert spec.read_text().endswith("# mine\n")


def test_unknown_name_suggests_the_closest(tmp_path: Path) -> None:
    outcome = run_cli("examples", "iris", "--to", str(tmp_path))
    assert outcome.code == 2
    assert "no example called 'iris'; did you mean 'iris_mlp'?" in outcome.stderr
    assert not any(tmp_path.iterdir())


def test_a_file_in_the_way_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    outcome = run_cli("examples", "iris_mlp", "--to", str(blocker))
    assert outcome.code == 2
    assert outcome.stderr == f"error: {blocker} is a file, not a folder; give --to a folder\n"
    outcome = run_cli("examples", "iris_mlp", "--to", str(blocker / "below"))
    assert outcome.code == 1
    assert outcome.stderr.startswith(f"error: cannot write {blocker / 'below' / 'iris_mlp.yaml'}")
