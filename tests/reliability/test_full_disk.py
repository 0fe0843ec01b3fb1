"""A full disk or an I/O error while writing a checkpoint, a model or predictions: the last
good file stays, the message names the file that could not be written, the command fails, and
no temporary file is left behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from engine import atomic
from engine.atomic import FileWriteError, atomic_write_bytes
from engine.saving import list_checkpoints
from tests.cli.test_run import run

FAULTS = pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])


def _failing_fsync(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Every data write fails as a full disk does: after the bytes went into the page cache."""

    def fail(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "fsync", fail)


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@FAULTS
def test_a_failed_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    target = tmp_path / "model.msz"
    target.write_bytes(b"old")
    _failing_fsync(monkeypatch, code)
    with pytest.raises(FileWriteError) as raised:
        atomic_write_bytes(target, b"new" * 1000)
    assert str(raised.value) == f"could not write {target}: {os.strerror(code)}"
    assert raised.value.errno == code and raised.value.path == target
    assert target.read_bytes() == b"old"
    assert _temporaries(tmp_path) == []


@FAULTS
def test_train_on_a_full_disk_keeps_the_last_checkpoint_and_model(
    project: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    spec = str(project / "specs" / "tiny.yaml")
    assert run("train", spec)[0] == 0
    folder = Path("runs/tiny")
    before = {p: p.read_bytes() for p in [folder / "model.msz", *list_checkpoints(folder)]}
    _failing_fsync(monkeypatch, code)
    status, _, err = run("train", spec, "--set", "fit.epochs=4", "--resume", str(folder))
    assert status == 1
    checkpoint = folder / "checkpoints" / "epoch-000002.msz"
    assert f"could not write {checkpoint}: {os.strerror(code)}" in err.replace("\n", "")
    assert {p: p.read_bytes() for p in before} == before
    assert list_checkpoints(folder) == list(before)[1:]
    assert _temporaries(folder) == []
    assert not (folder / ".lock").exists()


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".npz"])
def test_predict_on_a_full_disk_keeps_the_old_predictions(
    project: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    assert run("train", str(project / "specs" / "tiny.yaml"))[0] == 0
    Path("new.csv").write_text("x1,x2\n0.1,0.1\n0.9,0.9\n")
    output = Path(f"p{suffix}")
    output.write_bytes(b"old predictions")
    _failing_fsync(monkeypatch, errno.ENOSPC)
    status, _, err = run("predict", "runs/tiny", "--input", "new.csv", "--output", str(output))
    assert status != 0
    assert f"{output}: cannot write the file ({os.strerror(errno.ENOSPC)})" in " ".join(err.split())
    assert output.read_bytes() == b"old predictions"
    assert _temporaries(Path(".")) == []
