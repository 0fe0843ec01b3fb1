"""What a user sees at 80 columns, with and without colour: whole paths, confirmations, lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.terminal import COLOUR, assert_fits, run_cli

DEEP = "experiments/with/a/rather/long/folder/name/for/this/one/run/of/the/iris/example"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iris run trained two epochs into a deep run folder, and the folder it ran from."""
    root = tmp_path_factory.mktemp("fit")
    assert run_cli("examples", "iris_mlp", "--to", str(root)).code == 0
    out = root / DEEP
    args = ["train", str(root / "iris_mlp.yaml"), "--set", "fit.epochs=2", "--out", str(out)]
    assert run_cli(*args).code == 0
    return root


@COLOUR
def test_paths_are_never_folded_mid_word(
    trained: Path, colour: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(trained)
    args = ["train", "iris_mlp.yaml", "--set", "fit.epochs=1", "--out", DEEP + "_again"]
    assert f"Saved the run to {DEEP}_again\n" in run_cli(*args, colour=colour).stdout
    report = run_cli("report", DEEP, colour=colour)
    assert report.code == 0
    assert f"Run {DEEP}\n" in report.stdout
    digest = report.stdout.split("data train")[1].split("│")[1].strip()
    assert digest.startswith("sha256:")
    assert "…" not in report.stdout.split("Final metrics")[0]  # a digest is folded, never cut


@COLOUR
def test_evaluate_from_a_run_folder_shows_the_data_path_as_typed(
    trained: Path, colour: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(trained)
    outcome = run_cli("evaluate", DEEP, colour=colour)
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.startswith("Evaluation on data/iris_test.csv\n")
    assert_fits(outcome.stdout)


@COLOUR
def test_predict_output_confirms_what_it_wrote(
    trained: Path, colour: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(trained)
    args = ["predict", DEEP, "--input", "data/iris_test.csv", "--output", "p.csv"]
    outcome = run_cli(*args, colour=colour)
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout == "Wrote 30 predictions to p.csv\n"
    assert len((trained / "p.csv").read_text().splitlines()) == 31


@COLOUR
def test_explain_without_a_code_lists_every_code(colour: bool) -> None:
    from modelspec.diagnostics import CODES

    outcome = run_cli("explain", colour=colour)
    assert outcome.code == 0
    assert_fits(outcome.stdout)
    for code, entry in CODES.items():
        assert f"│ {code} │" in outcome.stdout and entry.title in outcome.stdout


@COLOUR
def test_report_legend_tells_train_from_validation_without_colour(
    trained: Path, colour: bool
) -> None:
    outcome = run_cli("report", str(trained / DEEP), colour=colour)
    legend = next(line for line in outcome.stdout.splitlines() if line.startswith("loss "))
    train_mark = legend.split(" train")[0].split()[-1]
    validation_mark = legend.split(" validation")[0].split()[-1]
    assert train_mark != validation_mark


def test_explain_an_unknown_code_suggests_the_closest() -> None:
    outcome = run_cli("explain", "E1O1")
    assert outcome.code == 2
    assert outcome.stderr == "error: unknown code 'E1O1'; did you mean 'E101'?\n"
