"""Whole training runs on the strict fake device: every example and benchmark model.

The fake device's arrays refuse to mix with host arrays exactly where CuPy's would, so a model
that fits, evaluates and predicts here has no hidden host round trip on the GPU path. The run
must also give bit for bit the CPU's numbers, since the fake device computes with NumPy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from engine import backend, native
from engine.build import from_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted(
    (ROOT / "benchmarks" / "workloads").glob("*.yaml")
)


def _data(model: Any, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    xs = []
    for t in model.inputs:
        shape = (n, *t.shape[1:])
        if "int" in t.dtype:
            xs.append(rng.integers(1, 8, shape).astype(t.dtype))
        else:
            xs.append(rng.random(shape, dtype=np.float32))
    ys = []
    for t in model.outputs:
        units = t.shape[-1]
        if len(t.shape) > 2:  # an image or sequence out (an autoencoder): a regression target
            ys.append(rng.random((n, *t.shape[1:]), dtype=np.float32))
            continue
        ys.append(
            rng.integers(0, units, n).astype(np.int32)
            if units > 1
            else rng.integers(0, 2, (n, 1)).astype(np.float32)
        )
    return xs, ys


def _run(spec: dict[str, Any], device: str) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    with backend.use(device):
        model = from_spec(spec)
        xs, ys = _data(model, 16)
        x = xs if len(xs) > 1 else xs[0]
        y = ys if len(ys) > 1 else ys[0]
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        weights = [backend.backend_of(w.data).to_host(w.data) for w in model.weights]
        assert all(backend.backend_of(w.data).name == device for w in model.weights)
        prediction = model.predict(x, batch_size=8)
    for p in prediction if isinstance(prediction, list) else [prediction]:
        assert isinstance(p, np.ndarray) and type(p) is np.ndarray
    return history.history, weights


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_fit_on_the_strict_fake_device_matches_the_cpu(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the CPU runs without the direct convolution, fused convolution + pooling and fused
    # attention kernels, the compiled kernels whose sums differ from the NumPy path's
    # (tests/engine/test_conv_direct.py, test_conv_pool.py and
    # tests/layers/test_attention_oracles.py hold each pair close)
    monkeypatch.setattr(native._ext, "conv_direct", None)
    monkeypatch.setattr(native._ext, "conv_pool", None)
    monkeypatch.setattr(native._ext, "attention", None)
    spec = yaml.safe_load(path.read_text())
    spec["compile"] = {**spec["compile"], "loss_weights": None}
    spec["compile"] = {k: v for k, v in spec["compile"].items() if v is not None}
    if spec["model"].get("type") == "functional" and len(spec["model"].get("outputs", [])) > 1:
        spec["compile"]["loss"] = {
            name: ("binary_crossentropy" if name == "big" else "sparse_categorical_crossentropy")
            for name in spec["model"]["outputs"]
        }
    cpu_history, cpu_weights = _run(spec, "cpu")
    fake_history, fake_weights = _run(spec, "fake")
    assert fake_history == cpu_history
    for a, b in zip(cpu_weights, fake_weights, strict=True):
        np.testing.assert_array_equal(a, b)
