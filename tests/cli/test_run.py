"""`modelspec train / evaluate / predict` end to end on a tiny spec in a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from modelspec.cli import app
from tests.opened import opens

ROWS = [
    ("0.1", "0.2", "low"),
    ("0.9", "0.8", "high"),
    ("0.2", "0.1", "low"),
    ("0.8", "0.9", "high"),
    ("0.15", "0.3", "low"),
    ("0.7", "0.95", "high"),
]

SPEC = {
    "name": "tiny",
    "seed": 1,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [2]},
            {"type": "Dense", "units": 4, "activation": "relu"},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ],
    },
    "compile": {
        "optimizer": {"type": "adam", "learning_rate": 0.05},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
    "data": {
        "train": {"path": "data/train.csv", "target": "level"},
        "test": {"path": "data/test.csv", "target": "level"},
    },
    "fit": {"epochs": 2, "batch_size": 4},
}


def csv_text(rows: list[tuple[str, str, str]], header: str = "x1,x2,level") -> str:
    return header + "\n" + "".join(",".join(r) + "\n" for r in rows)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec beside its data, and the current directory set to a separate work folder."""
    (tmp_path / "specs" / "data").mkdir(parents=True)
    (tmp_path / "specs" / "data" / "train.csv").write_text(csv_text(ROWS))
    (tmp_path / "specs" / "data" / "test.csv").write_text(csv_text(ROWS[:4]))
    (tmp_path / "specs" / "tiny.yaml").write_text(yaml.safe_dump(SPEC))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("CI", "1")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def write_spec(project: Path, **changes: object) -> Path:
    spec = json.loads(json.dumps(SPEC))
    spec.update(changes)
    path = project / "specs" / "changed.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_train_writes_the_run_folder_and_prints_metrics(project: Path) -> None:
    code, out, err = run("train", str(project / "specs" / "tiny.yaml"))
    assert code == 0, err
    run_dir = Path("runs/tiny")
    assert (run_dir / "model.msz").is_file()
    assert (run_dir / "spec.yaml").is_file()
    assert (run_dir / "history.csv").read_text().startswith("epoch,")
    assert (run_dir / "training_curves.png").read_bytes().startswith(b"\x89PNG")
    assert "Epoch 2/2" in out and "Epoch 3/2" not in out
    assert "Final metrics" in out and "accuracy" in out and "test" in out
    assert "Total params: 22" in out


def test_train_without_matplotlib_says_once_why_there_is_no_png(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run("train", str(project / "specs" / "tiny.yaml"))
    assert code == 0, err
    assert out.count("no training_curves.png written") == 1 and "modelspec[plots]" in out
    assert (Path("runs/tiny") / "history.csv").is_file()
    assert not (Path("runs/tiny") / "training_curves.png").exists()


def test_set_overrides_keys_and_out_picks_the_folder(project: Path) -> None:
    spec = str(project / "specs" / "tiny.yaml")
    code, out, err = run(
        "train", spec, "--set", "fit.epochs=3", "--set", "name=other", "--out", "o"
    )
    assert code == 0, err
    assert "Epoch 3/3" in out
    saved = yaml.safe_load(Path("o/spec.yaml").read_text())
    assert saved["fit"]["epochs"] == 3 and saved["name"] == "other"
    # Data paths in the saved spec are relative to the run folder, so it can be evaluated alone.
    assert (Path("o") / saved["data"]["test"]["path"]).resolve() == (
        project / "specs" / "data" / "test.csv"
    ).resolve()


def test_same_seed_same_run(project: Path) -> None:
    spec = str(project / "specs" / "tiny.yaml")
    for out in ("a", "b"):
        assert run("train", spec, "--out", out)[0] == 0
    first = run("evaluate", "a", "--format", "json")[1]
    assert first == run("evaluate", "b", "--format", "json")[1]


def test_evaluate_spec_run_dir_and_data_file(project: Path) -> None:
    spec = str(project / "specs" / "tiny.yaml")
    assert run("train", spec)[0] == 0
    by_spec = json.loads(run("evaluate", spec, "--format", "json")[1])
    by_dir = json.loads(run("evaluate", "runs/tiny", "--format", "json")[1])
    assert set(by_spec) == {"loss", "accuracy"}
    assert by_spec == by_dir
    other = Path("other.csv")
    other.write_text(csv_text(ROWS[4:]))
    code, out, _ = run("evaluate", "runs/tiny", "--data", str(other), "--format", "json")
    assert code == 0 and json.loads(out)["accuracy"] in (0.0, 0.5, 1.0)
    code, out, _ = run("evaluate", "runs/tiny")
    assert code == 0 and "loss" in out


def test_predict_writes_original_labels(project: Path) -> None:
    assert run("train", str(project / "specs" / "tiny.yaml"), "--set", "fit.epochs=40")[0] == 0
    # Columns in another order, an extra column and the target: read by name, others ignored.
    Path("new.csv").write_text("level,note,x2,x1\nlow,a,0.1,0.1\nhigh,b,0.9,0.9\n")
    code, _, err = run("predict", "runs/tiny", "--input", "new.csv", "--output", "p.csv")
    assert code == 0, err
    assert Path("p.csv").read_text() == "level\nlow\nhigh\n"
    code, out, _ = run("predict", "runs/tiny", "--input", "new.csv")
    assert code == 0 and out.splitlines() == ["level", "low", "high"]
    code, _, _ = run(
        "predict", "runs/tiny", "--input", "new.csv", "--output", "p.csv", "--probabilities"
    )
    header, *rows = Path("p.csv").read_text().splitlines()
    assert header == "level_high,level_low"
    assert all(abs(sum(float(v) for v in row.split(",")) - 1.0) < 1e-5 for row in rows)
    assert run("predict", "runs/tiny", "--input", "new.csv", "--output", "p.npy")[0] == 0
    assert np.load("p.npy").shape == (2, 2)


USER_ERRORS = [
    ("no spec file", ["train", "missing.yaml"], 2, "missing.yaml"),
    ("bad override", ["train", "{spec}", "--set", "fit.epochs"], 2, "KEY=VALUE"),
    ("bad device", ["train", "{spec}", "--device", "tpu"], 2, "tpu"),
    ("no run folder", ["evaluate", "nowhere"], 2, "nowhere"),
    ("spec never trained", ["evaluate", "{spec}"], 2, "runs/tiny"),
    ("no model to predict with", ["predict", "nowhere", "--input", "x.csv"], 2, "nowhere"),
    ("bad format", ["evaluate", "{spec}", "--format", "xml"], 2, "xml"),
    ("schema error", ["train", "{spec}", "--set", "fit.epochs=-1"], 1, "epochs"),
]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [case[1:] for case in USER_ERRORS],
    ids=[case[0] for case in USER_ERRORS],
)
def test_user_errors_are_one_line_and_an_exit_code(
    project: Path, args: list[str], code: int, words: str
) -> None:
    spec = str(project / "specs" / "tiny.yaml")
    got, out, err = run(*(a.replace("{spec}", spec) for a in args))
    assert got == code
    assert words in out + err


DATA_ERRORS = [
    ("missing column", {"train": {"path": "data/train.csv", "target": "levle"}}, "'levle'"),
    ("missing file", {"train": {"path": "data/nope.csv", "target": "level"}}, "nope.csv"),
]


@pytest.mark.parametrize(
    ("data", "words"), [case[1:] for case in DATA_ERRORS], ids=[case[0] for case in DATA_ERRORS]
)
def test_data_errors_stop_before_training(
    project: Path, data: dict[str, object], words: str
) -> None:
    code, out, err = run("train", str(write_spec(project, data=data)))
    assert code in (1, 2)
    assert words in err
    assert "Epoch" not in out
    assert not Path("runs").exists()


@pytest.mark.parametrize(("section", "words"), [("compile", "`compile`"), ("data", "data.train")])
def test_train_needs_compile_and_training_data(project: Path, section: str, words: str) -> None:
    code, _, err = run("train", str(write_spec(project, **{section: None})))
    assert code == 1
    assert words in err


def test_wrong_width_is_a_failed_run_naming_the_input(project: Path) -> None:
    (project / "specs" / "data" / "wide.csv").write_text("x1,x2,x3,level\n1,2,3,low\n")
    data = {"train": {"path": "data/wide.csv", "target": "level"}}
    code, _, err = run("train", str(write_spec(project, data=data)))
    assert code == 1
    assert "wide.csv" in err and "needs 2" in err


def test_nan_loss_is_a_failed_run_without_traceback(project: Path) -> None:
    compile_section = dict(SPEC["compile"])  # type: ignore[arg-type]
    compile_section["optimizer"] = {"type": "sgd", "learning_rate": 1e30}
    code, _, err = run("train", str(write_spec(project, compile=compile_section)))
    assert code == 1
    assert "NaN" in err or "infinite" in err


def test_gpu_without_cupy_or_cuda_is_one_clear_line(project: Path) -> None:
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    code, _, err = run("train", str(project / "specs" / "tiny.yaml"), "--device", "gpu")
    assert code == 2
    assert "CuPy" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_stops_cleanly_and_still_saves(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelspec.progress import EpochLines

    def interrupt(self: EpochLines, epoch: int, logs: object = None) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(EpochLines, "on_epoch_begin", interrupt)
    code, out, err = run("train", str(project / "specs" / "tiny.yaml"), "--set", "fit.epochs=5")
    assert code == 130, err
    assert "Interrupted" in out and "Epoch 2/5" not in out
    assert Path("runs/tiny/model.msz").is_file()
    assert run("evaluate", "runs/tiny", "--format", "json")[0] == 0


def test_resume_continues_to_the_same_result(project: Path) -> None:
    spec = str(project / "specs" / "tiny.yaml")
    assert run("train", spec, "--set", "fit.epochs=4", "--out", "whole")[0] == 0
    assert run("train", spec, "--set", "fit.epochs=2", "--out", "part")[0] == 0
    code, out, err = run("train", spec, "--set", "fit.epochs=4", "--resume", "part")
    assert code == 0, err
    assert "Epoch 3/4" in out and "Epoch 1/4" not in out
    whole = run("evaluate", "whole", "--format", "json")[1]
    assert run("evaluate", "part", "--format", "json")[1] == whole


def test_evaluate_a_model_file_of_any_suffix(project: Path) -> None:
    """A model file carries its spec, whatever its suffix: a trained run's archive evaluates
    on --data as its run folder does, and so does a model saved from Python."""
    import shutil

    from engine import Input, Model, layers

    assert run("train", str(project / "specs" / "tiny.yaml"))[0] == 0
    shutil.copy("runs/tiny/model.msz", "copy.keras")
    by_dir = json.loads(run("evaluate", "runs/tiny", "--format", "json")[1])
    test_csv = str(project / "specs" / "data" / "test.csv")
    for model_file in ("runs/tiny/model.msz", "copy.keras"):
        code, out, err = run("evaluate", model_file, "--data", test_csv, "--format", "json")
        assert code == 0, err
        assert json.loads(out) == by_dir
    code, _, err = run("evaluate", "copy.keras")
    assert code == 2 and "--data" in err
    with opens(Path("copy.keras")) as modes:
        assert run("evaluate", "copy.keras", "--data", test_csv)[0] == 0
    assert len(modes) == 2, modes  # a look at its first bytes, then one whole read

    inputs = Input(shape=(2,))
    model = Model(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    model.save("python.h5")
    np.savez("xy.npz", x=x, y=y)
    code, out, err = run("evaluate", "python.h5", "--data", "xy.npz", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["loss"] == pytest.approx(model.evaluate(x, y), rel=1e-6)
