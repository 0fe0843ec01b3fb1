"""Fuzzing the file readers: mutated model archives, CSV, NPY and NPZ data files. Property: the
file reads, or a DataError / ArtifactError names it; never another exception, never a hang."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import Input, Sequential, layers
from engine.config.data import DataSource
from engine.data import (
    DataError,
    InputSpec,
    ModelSignature,
    OutputSpec,
    load_dataset,
    read_table,
)
from engine.loading import load_model
from engine.saving import ArtifactError, artifact_bytes, model_artifact
from engine.streaming import open_stream
from modelspec import runs
from modelspec.check import check_spec
from modelspec.example_specs import copy_example, find
from tests.reliability.bounds import bounded

Edits = list[tuple[int, int, bytes]]
edits = st.lists(
    st.tuples(st.integers(0, 1 << 20), st.integers(0, 16), st.binary(max_size=8)),
    min_size=1,
    max_size=4,
)


def _mutated(data: bytes, changes: list[tuple[int, int, bytes]], cut: int | None) -> bytes:
    for at, length, insert in changes:
        at %= max(1, len(data))
        data = data[:at] + insert + data[at + length :]
    return data if cut is None else data[: cut % max(1, len(data))]


cuts = st.one_of(st.none(), st.integers(0, 1 << 20))


@pytest.fixture(scope="module")
def archive() -> bytes:
    model = Sequential([Input(shape=(3,)), layers.Dense(4, activation="relu"), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return artifact_bytes(model_artifact(model))


@given(edits, cuts)
def test_mutated_model_archives(
    tmp_path_factory: pytest.TempPathFactory, archive: bytes, changes: Edits, cut: int | None
) -> None:
    path = tmp_path_factory.mktemp("archive") / "model.msz"
    path.write_bytes(_mutated(archive, changes, cut))
    with bounded():
        try:
            load_model(path)
        except ArtifactError as exc:
            assert str(path) in str(exc)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("examples")
    for name in ("iris_mlp", "digits_multi_io"):
        copy_example(find(name), folder)
    return folder


def _load_train(spec: Path) -> None:
    report = check_spec(spec)
    config = runs.data_config(report.data, spec)
    runs.load_run_data(config, spec.parent, runs.signature_of(report), "float32")


@pytest.mark.parametrize(
    ("spec", "data"),
    [("iris_mlp", "iris_train.csv"), ("digits_multi_io", "digits_multi_train.npz")],
)
@given(changes=edits, cut=cuts)
def test_mutated_data_files(
    tmp_path_factory,
    examples: Path,
    spec: str,
    data: str,
    changes: Edits,
    cut: int | None,
) -> None:
    folder = tmp_path_factory.mktemp("data")
    shutil.copy(examples / f"{spec}.yaml", folder)
    shutil.copytree(examples / "data", folder / "data")
    original = (examples / "data" / data).read_bytes()
    (folder / "data" / data).write_bytes(_mutated(original, changes, cut))
    with bounded():
        try:
            _load_train(folder / f"{spec}.yaml")
        except DataError as exc:
            assert str(folder / "data") in str(
                exc
            )  # the training file, or a split read by its schema


@given(edits, cuts)
def test_mutated_npy_files(
    tmp_path_factory: pytest.TempPathFactory, changes: Edits, cut: int | None
) -> None:
    path = tmp_path_factory.mktemp("npy") / "x.npy"
    np.save(path, np.arange(24, dtype=np.float32).reshape(4, 6))
    path.write_bytes(_mutated(path.read_bytes(), changes, cut))
    with bounded():
        try:
            for array in read_table(path).arrays.values():
                np.array(array)  # reads every byte of a memory map
        except DataError as exc:
            assert str(path) in str(exc)


SIGNATURE = ModelSignature(
    (InputSpec("x", (6,)),), (OutputSpec("y", (3,), "sparse_categorical_crossentropy"),)
)
LABEL_FILES = ("x.npy", "y.npy", "both")


def _npy_pair(folder: Path, changes: Edits, cut: int | None, damaged: str) -> DataSource:
    """x.npy (8 samples of 6 values) and its labels y.npy, one of them (or both) mutated."""
    np.save(folder / "x.npy", np.arange(48, dtype=np.float32).reshape(8, 6) / 48)
    np.save(folder / "y.npy", np.arange(8, dtype=np.int64) % 3)
    for name in ("x.npy", "y.npy") if damaged == "both" else (damaged,):
        path = folder / name
        path.write_bytes(_mutated(path.read_bytes(), changes, cut))
    return DataSource(path="x.npy", y="y.npy")


def _names_a_file(exc: DataError, folder: Path) -> None:
    assert str(folder / "x.npy") in str(exc) or str(folder / "y.npy") in str(exc), str(exc)


@given(edits, cuts, st.sampled_from(LABEL_FILES))
def test_mutated_npy_files_read_in_memory(
    tmp_path_factory: pytest.TempPathFactory, changes: Edits, cut: int | None, damaged: str
) -> None:
    """The in-memory path (np.load's memory map, fitted and checked whole): data or a DataError."""
    folder = tmp_path_factory.mktemp("npy_memory")
    source = _npy_pair(folder, changes, cut, damaged)
    with bounded():
        try:
            dataset, _ = load_dataset(source, folder, SIGNATURE)
        except DataError as exc:
            _names_a_file(exc, folder)
            return
    assert dataset.x["x"].dtype == np.float32 and dataset.x["x"].shape[1:] == (6,)


@given(edits, cuts, st.sampled_from(LABEL_FILES))
def test_mutated_npy_files_streamed(
    tmp_path_factory: pytest.TempPathFactory, changes: Edits, cut: int | None, damaged: str
) -> None:
    """The streaming path (row ranges of the memory maps, read on the prefetch thread): every
    batch of an epoch, then the whole stream in memory, or a DataError."""
    folder = tmp_path_factory.mktemp("npy_stream")
    source = _npy_pair(folder, changes, cut, damaged)
    with bounded():
        try:
            stream = open_stream(source, folder, SIGNATURE)
            rows = sum(len(x["x"]) for x, _ in stream.batches(3, seed=1))
            whole = stream.to_dataset()
        except DataError as exc:
            _names_a_file(exc, folder)
            return
    assert rows == len(whole) == len(stream)


# Crashes the fuzzer found, kept as regression tests.


def test_an_archive_with_a_byte_lost_from_its_first_header(tmp_path: Path, archive: bytes) -> None:
    """zipfile met a negative seek (ValueError) where the local header is one byte short."""
    path = tmp_path / "model.msz"
    path.write_bytes(_mutated(archive, [(4, 1, b"")], None))
    with pytest.raises(ArtifactError, match="model.msz"):
        load_model(path)


@pytest.mark.parametrize("damage", [(b"}", b" "), (b"'shape': (", b"'shape': ((")])
def test_an_npy_header_that_does_not_parse(tmp_path: Path, damage: tuple[bytes, bytes]) -> None:
    """NumPy's header parser raised SyntaxError / TokenError, which escaped as a traceback."""
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, 6), dtype=np.float32))
    path.write_bytes(path.read_bytes().replace(*damage, 1))
    with pytest.raises(DataError, match="x.npy: not a readable NPY array"):
        read_table(path)


@pytest.mark.parametrize("start", [b"PK\x03\x04", b"PK\x05\x06"])
def test_an_npy_file_that_starts_like_a_zip(tmp_path: Path, start: bytes) -> None:
    """np.load returned an NpzFile, left open, where an array was expected."""
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, 6), dtype=np.float32))
    path.write_bytes(start + path.read_bytes()[len(start) :])
    with pytest.raises(DataError, match="x.npy: not a readable NPY array"):
        read_table(path)
