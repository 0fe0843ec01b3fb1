"""The artifact format: exact round trips, atomic checkpoints and one clear error per damage."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine import saving
from engine.atomic import SHARED_FILE_MODE, atomic_write_bytes
from engine.callbacks import CheckpointCallback
from engine.loading import load_model
from tests.artifacts.helpers import FakeModel, flip_member_byte, rezip, sample_artifact


def _assert_same_tree(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_tree(x, y)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b and type(a) is type(b)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    original = sample_artifact()
    file = saving.write_artifact(tmp_path / "run", original)
    assert file == tmp_path / "run" / saving.MODEL_FILE
    assert file.stat().st_mode & 0o777 == SHARED_FILE_MODE
    loaded = saving.read_artifact(tmp_path / "run")
    for name in ("spec", "weights", "training_state", "history", "label_maps", "statistics"):
        _assert_same_tree(getattr(original, name), getattr(loaded, name))
    assert loaded.metadata == original.metadata


def test_same_content_gives_identical_bytes() -> None:
    assert saving.artifact_bytes(sample_artifact()) == saving.artifact_bytes(sample_artifact())


def test_unstorable_state_is_refused(tmp_path: Path) -> None:
    artifact = sample_artifact()
    artifact.training_state = {"callback": object()}
    with pytest.raises(TypeError, match="state/callback"):
        saving.write_artifact(tmp_path / "m.msz", artifact)


def _good(tmp_path: Path) -> bytes:
    return saving.write_artifact(tmp_path / "good.msz", sample_artifact()).read_bytes()


def _weights_bytes() -> bytes:
    return saving.artifact_bytes(sample_artifact(seed=1))


def _member(name: str) -> bytes:
    import io
    import zipfile

    return zipfile.ZipFile(io.BytesIO(_weights_bytes())).read(name)


Damage = Callable[[bytes], bytes]
DAMAGES: list[tuple[str, Damage, type[saving.ArtifactError], str]] = [
    ("empty", lambda d: b"", saving.TruncatedArtifactError, "empty"),
    ("cut-short", lambda d: d[: len(d) // 2], saving.TruncatedArtifactError, "cut short"),
    ("yaml-file", lambda d: b"model:\n  type: sequential\n", saving.NotAnArtifactError, "ZIP"),
    (
        "foreign-zip",
        lambda d: rezip(d, manifest_patch={"format": "something-else"}),
        saving.NotAnArtifactError,
        "does not describe",
    ),
    (
        "bit-flip",
        lambda d: flip_member_byte(d, "weights.safetensors"),
        saving.CorruptedArtifactError,
        "weights.safetensors",
    ),
    (
        "tampered-weights",
        lambda d: rezip(d, {"weights.safetensors": _member("weights.safetensors")}),
        saving.TamperedArtifactError,
        "weights.safetensors does not match its SHA-256",
    ),
    (
        "resized-member",
        lambda d: rezip(d, {"history.json": b"{}" + b" " * 10_000}),
        saving.TamperedArtifactError,
        "history.json is not the size",
    ),
    (
        "newer-format",
        lambda d: rezip(d, manifest_patch={"format_version": 99}),
        saving.NewerFormatError,
        "format_version 99 is newer",
    ),
    (
        "missing-weights",
        lambda d: rezip(d, {"weights.safetensors": None}),
        saving.MissingMemberError,
        "weights.safetensors",
    ),
    (
        "missing-manifest",
        lambda d: rezip(d, add=[]).replace(b"manifest.json", b"manifest.jsox"),
        saving.MissingMemberError,
        "manifest.json",
    ),
    (
        "injected-code",
        lambda d: rezip(d, add=[("payload.py", b"import os")]),
        saving.UnexpectedMemberError,
        "payload.py",
    ),
    (
        "duplicate-member",
        lambda d: rezip(d, add=[("spec.json", b"{}")]),
        saving.DuplicateMemberError,
        "spec.json",
    ),
    (
        "bad-json",
        lambda d: rezip(d, {"spec.json": b"{not json"}, update_digests=True),
        saving.MalformedMemberError,
        "spec.json is not valid JSON",
    ),
    (
        "bad-safetensors",
        lambda d: rezip(
            d, {"weights.safetensors": b"\x08" + b"\x00" * 7 + b"{}"}, update_digests=True
        ),
        saving.MalformedMemberError,
        "not valid safetensors",
    ),
]


@pytest.mark.parametrize(
    ("case", "damage", "error", "message"), DAMAGES, ids=[d[0] for d in DAMAGES]
)
def test_damaged_artifact_names_the_problem(
    tmp_path: Path, case: str, damage: Damage, error: type[saving.ArtifactError], message: str
) -> None:
    bad = tmp_path / f"{case}.msz"
    bad.write_bytes(damage(_good(tmp_path)))
    with pytest.raises(error, match=message) as info:
        saving.read_artifact(bad)
    assert type(info.value) is error and str(bad) in str(info.value)


def test_missing_path_is_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(saving.ArtifactNotFoundError, match="no such file"):
        saving.read_artifact(tmp_path / "nowhere")


def test_damage_kinds_are_distinct() -> None:
    kinds = [cls.kind for cls in saving.ArtifactError.__subclasses__()]
    assert len(kinds) == len(set(kinds)) >= 10


# ----- the Model layer -----------------------------------------------------------------------
def test_save_and_load_model_round_trip(tmp_path: Path) -> None:
    model = FakeModel({"type": "sequential", "layers": []}, seed=3)
    file = saving.save_model(
        model,
        tmp_path / "run",
        label_maps={"y": ["a", "b"]},
        data_fingerprints={"train.csv": "sha256:00"},
        final_metrics={"loss": 0.25},
    )
    artifact = saving.read_artifact(file)
    assert artifact.spec == {
        "model": model.config,
        "compile": model.compile_config,
        "seed": 3,
        "dtype": "float32",
    }
    assert artifact.metadata["seed"] == 3
    assert artifact.metadata["data_fingerprints"] == {"train.csv": "sha256:00"}
    assert artifact.metadata["format_version"] == saving.FORMAT_VERSION
    assert {"python", "numpy"} <= set(artifact.metadata["package_versions"])

    loaded = load_model(tmp_path / "run", builder=lambda spec: FakeModel(spec["model"], 9))
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    assert loaded.label_maps == {"y": ["a", "b"]}
    assert loaded.state["epoch"] == 2
    np.testing.assert_array_equal(loaded.state["optimizer"]["m"], np.ones(3))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda w: w.pop("dense/bias"), "missing \\['dense/bias'\\]"),
        (lambda w: w.update({"extra/w": np.zeros(1)}), "unexpected \\['extra/w'\\]"),
        (
            lambda w: w.update({"dense/bias": np.zeros(5, np.float32)}),
            "float32\\[5\\]; .* float32\\[3\\]",
        ),
        (
            lambda w: w.update({"dense/bias": np.zeros(3, np.float64)}),
            "float64\\[3\\]; .* float32\\[3\\]",
        ),
    ],
)
def test_weights_that_do_not_fit_the_spec(
    tmp_path: Path, edit: Callable[[dict], object], message: str
) -> None:
    artifact = saving.model_artifact(FakeModel({}))
    edit(artifact.weights)
    saving.write_artifact(tmp_path / "m.msz", artifact)
    with pytest.raises(saving.WeightsMismatchError, match=message):
        load_model(tmp_path / "m.msz", builder=lambda spec: FakeModel({}))


def test_fingerprint_is_sha256_of_the_file(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_bytes(b"a,b\n1,2\n")
    import hashlib

    assert saving.fingerprint_file(data) == "sha256:" + hashlib.sha256(b"a,b\n1,2\n").hexdigest()


# ----- checkpoints ----------------------------------------------------------------------------
def test_checkpoints_keep_the_newest(tmp_path: Path) -> None:
    for epoch in range(5):
        artifact = sample_artifact()
        artifact.metadata = {"epoch": epoch}
        saving.write_checkpoint(tmp_path, epoch, artifact, keep=2)
    assert [p.name for p in saving.list_checkpoints(tmp_path)] == [
        "epoch-000003.msz",
        "epoch-000004.msz",
    ]
    path, artifact = saving.latest_checkpoint(tmp_path)
    assert artifact.metadata == {"epoch": 4}


def test_damaged_newest_checkpoint_falls_back(tmp_path: Path) -> None:
    for epoch in range(2):
        artifact = sample_artifact()
        artifact.metadata = {"epoch": epoch}
        saving.write_checkpoint(tmp_path, epoch, artifact)
    newest = saving.checkpoint_path(tmp_path, 1)
    newest.write_bytes(newest.read_bytes()[:100])
    path, artifact = saving.latest_checkpoint(tmp_path)
    assert path == saving.checkpoint_path(tmp_path, 0) and artifact.metadata == {"epoch": 0}


def test_no_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(saving.ArtifactNotFoundError, match="no checkpoint"):
        saving.latest_checkpoint(tmp_path)


def test_callback_writes_each_epoch(tmp_path: Path) -> None:
    callback = CheckpointCallback(tmp_path, keep=3, final_metrics={"loss": 1.0})
    callback.set_model(FakeModel({}))
    for epoch in range(4):
        callback.on_epoch_end(epoch, {"loss": 1.0})
    assert len(saving.list_checkpoints(tmp_path)) == 3
    assert saving.latest_checkpoint(tmp_path)[1].training_state is not None


def test_fresh_run_drops_checkpoints_of_an_older_run(tmp_path: Path) -> None:
    for epoch in range(5, 7):
        saving.write_checkpoint(tmp_path, epoch, sample_artifact())
    callback = CheckpointCallback(tmp_path)
    callback.set_model(FakeModel({}))
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0, {"loss": 0.125})
    path, artifact = saving.latest_checkpoint(tmp_path)
    assert path.name == "epoch-000000.msz"
    assert artifact.history == {"loss": [0.5, 0.25, 0.125]}


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_manifest_lists_every_member(tmp_path: Path) -> None:
    import zipfile

    file = saving.write_artifact(tmp_path / "m.msz", sample_artifact())
    with zipfile.ZipFile(file) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist()) - {"manifest.json"}
    assert set(manifest["files"]) == names
