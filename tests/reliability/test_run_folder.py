"""A `train` that fails after taking its run folder removes the folder it made if nothing was
written there; a folder that existed before, or any file in it, is never removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelspec.run_folder import removed_if_left_empty
from tests.cli.test_run import SPEC, run, write_spec


class Failure(Exception):
    pass


def _fail_inside(run_dir: Path, make: tuple[str, ...] = (), files: tuple[str, ...] = ()) -> None:
    with pytest.raises(Failure), removed_if_left_empty(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        for folder in make:
            (run_dir / folder).mkdir(parents=True)
        for file in files:
            (run_dir / file).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / file).write_text("of value")
        raise Failure


def test_a_failed_run_removes_the_empty_folders_it_made(tmp_path: Path) -> None:
    _fail_inside(tmp_path / "runs" / "tiny", make=("logs/train", "checkpoints"))
    assert list(tmp_path.iterdir()) == []  # runs/ was made by the run too


def test_a_file_keeps_its_folders(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "tiny"
    _fail_inside(run_dir, make=("logs",), files=("checkpoints/epoch_0001.ckpt",))
    assert (run_dir / "checkpoints" / "epoch_0001.ckpt").read_text() == "of value"
    assert not (run_dir / "logs").exists()  # empty and made by the run


def test_a_folder_that_existed_is_kept_even_empty(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    _fail_inside(tmp_path / "runs" / "tiny")
    assert list(tmp_path.iterdir()) == [tmp_path / "runs"]
    (tmp_path / "mine").mkdir()
    _fail_inside(tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()


def test_a_run_that_succeeds_keeps_its_folder(tmp_path: Path) -> None:
    with removed_if_left_empty(tmp_path / "runs" / "tiny"):
        (tmp_path / "runs" / "tiny").mkdir(parents=True)
    assert (tmp_path / "runs" / "tiny").is_dir()


def _nan_spec(project: Path) -> Path:
    compile_section = dict(SPEC["compile"])  # type: ignore[arg-type]
    compile_section["optimizer"] = {"type": "sgd", "learning_rate": 1e30}
    return write_spec(project, compile=compile_section)


def test_train_stopped_by_a_nan_at_its_first_step_leaves_no_run_folder(project: Path) -> None:
    code, _, err = run("train", str(_nan_spec(project)))
    assert code == 1 and "loss became" in err
    assert not Path("runs").exists()


def test_train_into_an_existing_empty_folder_keeps_it(project: Path) -> None:
    Path("mine").mkdir()
    code, _, _ = run("train", str(_nan_spec(project)), "--out", "mine")
    assert code == 1
    assert Path("mine").is_dir()
