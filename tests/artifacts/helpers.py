"""Shared test data for the artifact tests: a sample artifact, a fake model, zip surgery."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.saving import Artifact


def sample_artifact(seed: int = 0) -> Artifact:
    rng = np.random.default_rng(seed)
    return Artifact(
        spec={"model": {"type": "sequential", "layers": [{"type": "Dense", "units": 3}]}},
        weights={
            "dense/kernel": rng.standard_normal((4, 3)).astype(np.float32),
            "dense/bias": rng.standard_normal(3).astype(np.float32),
            "normalization/count": np.array(5.0, np.float32),
        },
        training_state={
            "epoch": 3,
            "optimizer": {
                "iterations": 12,
                "m": [rng.standard_normal((4, 3)), np.zeros(3, np.float32)],
                "learning_rate": 0.001,
            },
            "rng": {"bit_generator": "PCG64", "state": {"state": 2**100 + 7, "inc": 5}},
        },
        history={"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6, 0.4]},
        label_maps={"species": ["setosa", "versicolor", "virginica"]},
        statistics={
            "normalization/mean": np.arange(4, dtype=np.float64),
            "n/count": np.array(3, np.int64),
        },
        metadata={"seed": 42, "final_metrics": {"loss": 0.25}},
    )


def rezip(
    data: bytes,
    replace: Mapping[str, bytes | None] | None = None,
    add: list[tuple[str, bytes]] | None = None,
    manifest_patch: Mapping[str, Any] | None = None,
    update_digests: bool = False,
) -> bytes:
    """Rebuild an archive with members replaced, removed or added, and the manifest edited."""
    source = zipfile.ZipFile(io.BytesIO(data))
    members = {info.filename: source.read(info.filename) for info in source.infolist()}
    for name, value in (replace or {}).items():
        if value is None:
            members.pop(name)
        else:
            members[name] = value
    manifest = json.loads(members["manifest.json"])
    manifest.update(manifest_patch or {})
    if update_digests:
        manifest["files"] = {
            n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
            for n, b in members.items()
            if n != "manifest.json"
        }
    members["manifest.json"] = json.dumps(manifest).encode()
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate names we add on purpose
        with zipfile.ZipFile(out, "w") as archive:
            for name, value in [*members.items(), *(add or [])]:
                archive.writestr(name, value)
    return out.getvalue()


def flip_member_byte(data: bytes, name: str) -> bytes:
    """Flip one byte inside a member's stored data, leaving the archive's structure intact."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    header = data[info.header_offset : info.header_offset + 30]
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


class FakeVariable:
    """The slice of engine.Variable that saving touches."""

    def __init__(self, name: str, value: np.ndarray) -> None:
        self.name = name
        self.value = value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def assign(self, value: np.ndarray) -> None:
        self.value = np.array(value, dtype=self.value.dtype)


class FakeModel:
    """A stand-in for engine.Model with the interface save_model/load_model rely on."""

    def __init__(self, config: dict[str, Any], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.config = config
        self.compile_config = {"optimizer": "adam", "loss": "mse"}
        self.weights = [
            FakeVariable("dense/kernel", rng.standard_normal((4, 3)).astype(np.float32)),
            FakeVariable("dense/bias", np.zeros(3, np.float32)),
        ]
        self.history: dict[str, list[float]] = {"loss": [0.5, 0.25]}
        self.state: dict[str, Any] = {"epoch": 2, "optimizer": {"m": np.ones(3)}}
        self.seed = seed
        self.dtype = "float32"

    def get_config(self) -> dict[str, Any]:
        return self.config

    def get_training_state(self) -> dict[str, Any]:
        return self.state

    def set_training_state(self, state: dict[str, Any]) -> None:
        self.state = state
