"""SimpleRNN, LSTM and GRU against torch.nn.RNN/LSTM/GRU with copied weights, in float32.

torch keeps weights as (gates*units, in) with LSTM gates i, f, g, o (Keras i, f, c, o) and GRU
gates r, z, n (Keras z, r, h, and torch's GRU is Keras's reset_after=True); torch has two
biases where Keras's LSTM and SimpleRNN have one, so torch's second bias is zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.layers import registry
from engine.layers.base import CallContext

torch = pytest.importorskip("torch")

N, T, F, U = 3, 6, 5, 4


def _gru_perm(w: np.ndarray) -> np.ndarray:
    """Keras z, r, h columns -> torch r, z, n rows."""
    z, r, h = np.split(w, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _set(module: Any, kernel: np.ndarray, rec: np.ndarray, b_in: Any, b_rec: Any) -> None:
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(rec.T)))
        module.bias_ih_l0.copy_(torch.from_numpy(b_in))
        module.bias_hh_l0.copy_(torch.from_numpy(b_rec))


def _torch_module(kind: str, params: list[np.ndarray]) -> Any:
    kernel, rec, bias = params
    zeros = np.zeros_like(bias[0] if bias.ndim == 2 else bias)
    if kind == "LSTM":
        m = torch.nn.LSTM(F, U, batch_first=True)
        _set(m, kernel, rec, bias, zeros)
    elif kind == "GRU":
        m = torch.nn.GRU(F, U, batch_first=True)
        _set(m, _gru_perm(kernel), _gru_perm(rec), _gru_perm(bias[0]), _gru_perm(bias[1]))
    else:
        m = torch.nn.RNN(F, U, batch_first=True)
        _set(m, kernel, rec, bias, zeros)
    return m


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_torch(kind: str, return_sequences: bool, go_backwards: bool) -> None:
    layer = registry.get(kind).from_config(
        {"units": U, "return_sequences": return_sequences, "go_backwards": go_backwards}
    )
    layer.build((None, T, F), rng=np.random.default_rng(4))
    rng = np.random.default_rng(5)
    params = [w.data.copy() for w in layer.weights]
    params[2] = rng.standard_normal(params[2].shape).astype(np.float32) * 0.5
    x = rng.standard_normal((N, T, F)).astype(np.float32)

    ctx = CallContext()
    out, cache = layer.forward(params, x, ctx)
    gy = rng.standard_normal(out.shape).astype(np.float32)
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, gy, grads, ctx)

    module = _torch_module(kind, params)
    xt = torch.from_numpy(x[:, ::-1].copy() if go_backwards else x).requires_grad_(True)
    seq, _ = module(xt)
    ref = seq if return_sequences else seq[:, -1]
    ref.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    ref_dx = xt.grad.numpy()
    np.testing.assert_allclose(dx, ref_dx[:, ::-1] if go_backwards else ref_dx, atol=1e-5)

    dk = module.weight_ih_l0.grad.numpy().T
    drk = module.weight_hh_l0.grad.numpy().T
    db_in = module.bias_ih_l0.grad.numpy()
    if kind == "GRU":
        back = _gru_perm  # r, z, n -> z, r, n is the same swap
        np.testing.assert_allclose(grads[0], back(dk), atol=1e-5)
        np.testing.assert_allclose(grads[1], back(drk), atol=1e-5)
        np.testing.assert_allclose(grads[2][0], back(db_in), atol=1e-5)
        np.testing.assert_allclose(grads[2][1], back(module.bias_hh_l0.grad.numpy()), atol=1e-5)
    else:
        np.testing.assert_allclose(grads[0], dk, atol=1e-5)
        np.testing.assert_allclose(grads[1], drk, atol=1e-5)
        np.testing.assert_allclose(grads[2], db_in, atol=1e-5)
    assert out.dtype == dx.dtype == np.float32
