"""MultiHeadAttention inside models: named call inputs in a spec, Keras's mask propagation,
the strict fake device, and the two-core split of the attention kernel."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from engine import backend, native
from engine.build import build_model
from engine.fused import gemm
from engine.kernels.attention import attention_backward, attention_forward
from engine.spec_graph import ProblemKind, resolve

MASKED = {
    "type": "functional",
    "inputs": [
        {"name": "ids", "shape": [7], "dtype": "int32"},
        {"name": "allowed", "shape": [7, 7], "dtype": "bool"},
    ],
    "layers": [
        {
            "name": "tok",
            "type": "Embedding",
            "input_dim": 20,
            "output_dim": 8,
            "mask_zero": True,
            "inputs": "ids",
        },
        {"name": "pos", "type": "PositionEmbedding", "sequence_length": 7},
        {"name": "x", "type": "Add", "inputs": ["tok", "pos"]},
        {
            "name": "att",
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 4,
            "dropout": 0.2,
            "inputs": {"query": "x", "value": "x", "attention_mask": "allowed"},
        },
        {
            "name": "causal",
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 4,
            "use_causal_mask": True,
            "inputs": ["att", "att"],
        },
        {"name": "pool", "type": "GlobalAveragePooling1D"},
        {"name": "out", "type": "Dense", "units": 3, "activation": "softmax"},
    ],
    "outputs": ["out"],
}


def _data(n: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 20, (n, 7)).astype(np.int32)
    ids[::2, 5:] = 0
    allowed = rng.random((n, 7, 7)) > 0.2
    allowed[:, :, 0] = True
    return [ids, allowed], rng.integers(0, 3, n).astype(np.int32)


def test_mapping_lists_the_ports_in_call_order() -> None:
    graph, problems = resolve(MASKED)
    assert problems == []
    assert graph.node("att").inputs == ["x", "x", "x", "allowed"]  # key defaults to value


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"query": "x", "valeu": "x"}, "no call input 'valeu'.*did you mean 'value'"),
        ({"query": "x", "attention_mask": "x"}, "needs `value`"),
    ],
)
def test_bad_mappings_are_named(inputs: dict[str, str], message: str) -> None:
    spec: dict[str, Any] = {**MASKED, "layers": [*MASKED["layers"][:3]]}
    spec["layers"].append(
        {"name": "a", "type": "MultiHeadAttention", "num_heads": 1, "key_dim": 2, "inputs": inputs}
    )
    spec["outputs"] = ["a"]
    _, problems = resolve(spec)
    assert len(problems) == 1 and problems[0].path[-1] in ("inputs", "valeu")
    assert re.search(message, problems[0].message)


def test_mapping_on_a_layer_without_ports_is_an_error() -> None:
    spec = {
        "type": "functional",
        "inputs": [{"name": "a", "shape": [3]}],
        "layers": [{"name": "d", "type": "Dense", "units": 2, "inputs": {"query": "a"}}],
        "outputs": ["d"],
    }
    _, problems = resolve(spec)
    assert [p.kind for p in problems] == [ProblemKind.BAD_MODEL]
    assert "a name or a list of names" in problems[0].message


def test_padded_positions_change_nothing_but_themselves() -> None:
    """With mask_zero, what sits in padded slots never reaches the valid positions' outputs
    (Keras's query and value masks), and the pooled mean skips them."""
    model = build_model(MASKED, seed=3)
    (ids, allowed), _ = _data(4)
    before = model.predict([ids, allowed], verbose=0)
    weights = model.get_layer("pos").get_weights()[0]
    weights[5:] += 10.0  # the padded slots' positions see different inputs now
    model.get_layer("pos").set_weights([weights])
    after = model.predict([ids, allowed], verbose=0)
    np.testing.assert_allclose(before[::2], after[::2], rtol=1e-5, atol=1e-6)
    assert not np.allclose(before[1::2], after[1::2])


def _fit(device: str) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    with backend.use(device):
        model = build_model(MASKED, seed=5)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x, y = _data(12)
        history = model.fit(x, y, epochs=2, batch_size=6, verbose=0)
        return history.history, [backend.backend_of(w.data).to_host(w.data) for w in model.weights]


def test_fit_on_the_strict_fake_device_matches_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CPU runs without the fused attention kernel, whose sums differ from the NumPy
    # path's in the last bits (tests/layers/test_attention_oracles.py holds them close)
    monkeypatch.setattr(native._ext, "attention", None)
    cpu_history, cpu_weights = _fit("cpu")
    fake_history, fake_weights = _fit("fake")
    assert fake_history == cpu_history
    for a, b in zip(cpu_weights, fake_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_core_split_gives_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The NumPy chain's halves (the fused kernel's split is tested with the kernel)."""
    monkeypatch.setattr(native._ext, "attention", None)
    rng = np.random.default_rng(1)
    q, g = (rng.standard_normal((6, 2, 128, 16)).astype(np.float32) for _ in range(2))
    k, v = (rng.standard_normal((6, 2, 64, 16)).astype(np.float32) for _ in range(2))
    mask = rng.random((6, 1, 128, 64)) > 0.3
    keep = (rng.random((6, 2, 128, 64)) > 0.1).astype(np.float32) / np.float32(0.9)
    whole, cache = attention_forward(q, k, v, 0.25, mask, keep)
    grads = attention_backward(cache, g)
    with gemm.planned_blas():
        split, split_cache = attention_forward(q, k, v, 0.25, mask, keep)
        split_grads = attention_backward(split_cache, g)
    assert len(split_cache) == 2
    np.testing.assert_array_equal(whole, split)
    for a, b in zip(grads, split_grads, strict=True):
        np.testing.assert_array_equal(a, b)
