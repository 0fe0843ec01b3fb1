"""fit and evaluate on a Stream: the same numbers as arrays in memory, bit-identical per seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.build import from_spec
from engine.config.data import DataSource
from engine.layers.base import clear_session
from engine.streaming import open_stream
from tests.streaming.files import SIGNATURE, arrays, write_parquet

pytest.importorskip("pyarrow")

SPEC: dict[str, Any] = {
    "seed": 5,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [6], "name": "features"},
            {"type": "Dense", "units": 8, "activation": "relu"},
            {"type": "Dropout", "rate": 0.2},
            {"type": "Dense", "units": 3, "activation": "softmax", "name": "label"},
        ],
    },
    "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
}


def _model() -> Any:
    clear_session()
    return from_spec(SPEC)


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(u.tobytes() == v.tobytes() for u, v in zip(a, b, strict=True))


def test_unshuffled_stream_trains_as_arrays_do(tmp_path: Path) -> None:
    stream = open_stream(DataSource(**write_parquet(tmp_path)), tmp_path, SIGNATURE)
    on_stream = _model()
    h1 = on_stream.fit(stream, epochs=2, batch_size=32, shuffle=False, verbose=0)
    in_memory = _model()
    h2 = in_memory.fit(*arrays(), epochs=2, batch_size=32, shuffle=False, verbose=0)
    assert _same(on_stream.get_weights(), in_memory.get_weights())
    assert h1.history == h2.history
    assert on_stream.evaluate(stream, return_dict=True) == in_memory.evaluate(
        *arrays(), return_dict=True
    )


def test_shuffled_stream_is_bit_identical_from_run_to_run(tmp_path: Path) -> None:
    source = DataSource(**write_parquet(tmp_path), shuffle_buffer=50)
    runs = []
    for _ in range(2):
        model = _model()
        model.fit(open_stream(source, tmp_path, SIGNATURE), epochs=2, batch_size=16, verbose=0)
        runs.append(model.get_weights())
    assert _same(*runs)


def test_stream_rejects_what_it_cannot_do(tmp_path: Path) -> None:
    stream = open_stream(DataSource(**write_parquet(tmp_path)), tmp_path, SIGNATURE)
    with pytest.raises(ValueError, match="validation_split needs data in memory"):
        _model().fit(stream, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="give no y"):
        _model().fit(stream, arrays()[1], verbose=0)
