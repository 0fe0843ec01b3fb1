"""Normalization adapts on a stream over every row, batch by batch: the merged statistics equal
NumPy's float64 mean and variance of the whole file, also past the 65,536 rows an older cap
stopped at; `adapt(batches, steps=k)` reads k batches, as Keras's does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.build import from_spec
from engine.config.data import DataSource
from engine.data import InputSpec, ModelSignature, OutputSpec
from engine.layers.base import clear_session
from engine.streaming import open_stream
from engine.train.adapt import adapt_layers
from engine.train.stream_data import StreamData

ROWS = 70_000
SPEC: dict[str, Any] = {
    "seed": 1,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [3], "name": "features"},
            {"type": "Normalization", "name": "norm"},
            {"type": "Dense", "units": 1, "name": "label"},
        ],
    },
    "compile": {"optimizer": "sgd", "loss": "mse"},
}
SIGNATURE = ModelSignature((InputSpec("features", (3,)),), (OutputSpec("label", (1,)),))


def _data(folder: Path) -> np.ndarray:
    """A large mean (where summing squares would cancel), and rows past 65,536 that differ."""
    rng = np.random.default_rng(2)
    x = rng.normal(1e4, 3.0, size=(ROWS, 3)).astype(np.float32)
    x[65_536:] += np.float32(50.0)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", x[:, :1].copy())
    return x


def _stats(model: Any) -> dict[str, np.ndarray]:
    return {w.name.rsplit("/", 1)[-1]: w.numpy() for w in model.get_layer("norm").weights}


def test_streamed_adapt_covers_every_row(tmp_path: Path) -> None:
    x = _data(tmp_path)
    source = DataSource(path=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"), streaming=True)
    stream = open_stream(source, tmp_path, SIGNATURE)
    clear_session()
    model = from_spec(SPEC)
    adapt_layers(model, StreamData(model, stream))
    stats = _stats(model)
    whole = x.astype(np.float64)
    assert stats["count"] == ROWS
    np.testing.assert_allclose(stats["mean"], whole.mean(axis=0).astype(np.float32), rtol=1e-7)
    np.testing.assert_allclose(stats["variance"], whole.var(axis=0), rtol=1e-6)
    # the first 65,536 rows alone give a mean 3.5 lower and a variance 17 times smaller
    assert np.all(stats["variance"] > 10 * x[:65_536].astype(np.float64).var(axis=0))


def test_adapt_on_batches_equals_adapt_on_the_array_and_steps_bound_it() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(-7.0, 2.0, size=(1000, 4, 2))
    clear_session()
    layer_spec = {"type": "Normalization", "axis": [1, 2], "name": "norm"}
    spec = {
        **SPEC,
        "model": {"type": "sequential", "layers": [{"type": "Input", "shape": [4, 2]}, layer_spec]},
    }
    on_array = from_spec(spec).get_layer("norm")
    on_array.adapt(x)
    on_batches = from_spec(spec).get_layer("norm")
    on_batches.adapt(iter(np.array_split(x, 7)))
    for a, b in zip(on_array.weights, on_batches.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6)
    bounded = from_spec(spec).get_layer("norm")
    bounded.adapt((x[i : i + 100] for i in range(0, 1000, 100)), steps=3)
    np.testing.assert_allclose(bounded.weights[0].numpy(), x[:300].mean(axis=0), rtol=1e-6)
    assert float(bounded.weights[2].numpy()) == 300
    with pytest.raises(ValueError, match="at least 1"):
        bounded.adapt(iter([x]), steps=0)


def test_streamed_adapt_tells_its_rows_read(tmp_path: Path) -> None:
    """The adapt pass is a read of the whole stream: its rows go to the read-progress watcher
    batch by batch, out of the stream's known total, then a closing report."""
    from engine.read_progress import ReadProgress, watch
    from engine.train.stream_data import ADAPT_BATCH

    _data(tmp_path)
    source = DataSource(path=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"), streaming=True)
    stream = open_stream(source, tmp_path, SIGNATURE)
    clear_session()
    model = from_spec(SPEC)
    seen: list[ReadProgress] = []
    with watch(seen.append):
        adapt_layers(model, StreamData(model, stream))
    adapting = [r for r in seen if r.action == "adapt"]
    assert [r.rows for r in adapting[:-1]] == [
        min(ROWS, ADAPT_BATCH * k) for k in range(1, -(-ROWS // ADAPT_BATCH) + 1)
    ]
    assert {r.total for r in adapting} == {ROWS}
    assert [r.done for r in adapting] == [False] * (len(adapting) - 1) + [True]
    assert adapting[-1].path == tmp_path / "x.npy"
