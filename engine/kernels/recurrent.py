"""Fused time loops of the SimpleRNN, LSTM and GRU cells on raw, time-major backend arrays.

The input projection `x @ kernel (+ bias)` over all timesteps is one GEMM done by the caller
and handed in as `xz` (T, N, G); these loops add the recurrent GEMM per step, apply the gates
in place and keep what backpropagation through time needs. Backward returns the gradients of
the gate pre-activations for the input part (`dxz`) and, where it differs, for the recurrent
part (`drz`), so the caller can form dKernel, dRecurrentKernel and dInputs as one GEMM each
over all timesteps. Gates are in the order the caller lays them out: LSTM i, f, o, c (the
three sigmoid gates side by side, and stored gate-major so each gate is one contiguous
block), GRU z, r, h (Keras's order).

A mask (T, N, 1) bool keeps, for a False entry, the previous state (and so the previous
output), as Keras does. `rec_mask` (N, units) is the recurrent dropout mask applied to the
state that enters the recurrent GEMM.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.activations import Activation
from engine.backend import backend_of

Array = Any
_QUIET_OVERFLOW = np.errstate(over="ignore")


class GateFn:
    """An activation applied in place, with an in-place derivative.

    sigmoid, tanh and linear have derivatives in terms of their output alone, so the
    pre-activation need not be kept; any other activation keeps it (`needs_pre`).
    """

    def __init__(self, act: Activation) -> None:
        plain = not act.args
        self.act = act
        self.kind = act.name if plain and act.name in ("sigmoid", "tanh", "linear") else "other"
        self.needs_pre = self.kind == "other"

    def apply(self, z: Array, out: Array) -> None:
        """out = act(z); `out` may be `z` itself."""
        xp = backend_of(z).xp
        if self.kind == "tanh":
            xp.tanh(z, out=out)
        elif self.kind == "sigmoid":
            # 1 / (1 + exp(-z)) in place: exp is cheaper than tanh here, and its overflow to
            # inf for z < -88 gives the right limit 0 (the loops silence that warning)
            xp.negative(z, out=out)
            xp.exp(out, out=out)
            out += 1.0
            xp.reciprocal(out, out=out)
        elif self.kind == "linear":
            if out is not z:
                out[...] = z
        else:
            out[...] = self.act(z)

    def scale_grad(self, pre: Array | None, y: Array, dy: Array) -> None:
        """dy *= act'(pre) in place, from the output `y` (and `pre` when needed)."""
        if self.kind == "tanh":
            d = y * y
            xp = backend_of(y).xp
            xp.subtract(1.0, d, out=d)
            dy *= d
        elif self.kind == "sigmoid":
            d = 1.0 - y
            d *= y
            dy *= d
        elif self.kind == "other":
            dy[...] = self.act.grad(pre, y, dy)


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """Run the block with one BLAS thread (when threadpoolctl is installed).

    A recurrent layer does hundreds of small GEMMs per batch ((N, u) @ (u, k*u) per step);
    OpenBLAS splits even those over its threads, and when the other core is busy every step
    waits for it. Measured on W4 with a loaded 2-core machine: 2.6-28 s per 512-sample epoch
    with OpenBLAS's default 2 threads, 0.43-0.8 s with one (PyTorch, one thread: 0.44-0.55 s).
    """
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


@dataclass
class LoopCache:
    """What backward needs: states (T+1, N, u), gate activations, and kernel-specific extras."""

    hs: Array
    gates: Array
    pre: Array | None
    extra: dict[str, Array]
    mask: Array | None
    rec_mask: Array | None


def _masked_state(xp: Any, new: Array, old: Array, mask: Array | None, t: int) -> None:
    if mask is not None:
        xp.copyto(new, old, where=~mask[t])


def recurrent_inputs(cache: LoopCache) -> Array:
    """The states that entered the recurrent GEMM, (T, N, u), dropout applied."""
    hp = cache.hs[:-1]
    return hp if cache.rec_mask is None else hp * cache.rec_mask


def _split_dh(xp: Any, dh: Array, mask: Array | None, t: int) -> tuple[Array, Array | None]:
    """(gradient reaching the cell, gradient passing straight to the previous state)."""
    if mask is None:
        return dh, None
    keep = mask[t]
    passed = xp.where(keep, 0.0, dh).astype(dh.dtype, copy=False)
    return xp.where(keep, dh, 0.0).astype(dh.dtype, copy=False), passed


def _dropped(h: Array, rec_mask: Array | None) -> Array:
    return h if rec_mask is None else h * rec_mask


# ----- SimpleRNN: h = act(xz + h_prev @ rk) ----------------------------------------------------
@_QUIET_OVERFLOW
def simple_forward(
    xz: Array,
    rk: Array,
    h0: Array,
    act: GateFn,
    mask: Array | None = None,
    rec_mask: Array | None = None,
) -> LoopCache:
    xp = backend_of(xz).xp
    steps, n, u = xz.shape
    hs = xp.empty((steps + 1, n, u), dtype=xz.dtype)
    hs[0] = h0
    tmp = xp.empty((n, u), dtype=xz.dtype)
    for t in range(steps):
        xp.matmul(_dropped(hs[t], rec_mask), rk, out=tmp)
        tmp += xz[t]
        xz[t] = tmp  # keep the pre-activation: h = act(z) is then enough for any activation
        act.apply(tmp, hs[t + 1])
        _masked_state(xp, hs[t + 1], hs[t], mask, t)
    return LoopCache(hs, xz, xz, {}, mask, rec_mask)


def simple_backward(
    cache: LoopCache, rk: Array, act: GateFn, dys: Array, dh_last: Array | None
) -> tuple[Array, Array]:
    """(dxz, dh0); the recurrent part's gradient equals dxz."""
    xp = backend_of(cache.hs).xp
    hs, mask = cache.hs, cache.mask
    steps = hs.shape[0] - 1
    dxz = xp.empty_like(cache.gates)
    dh = xp.zeros_like(hs[0]) if dh_last is None else dh_last.copy()
    rkt = rk.T
    for t in range(steps - 1, -1, -1):
        if dys is not None:
            dh += dys[t]
        cell, passed = _split_dh(xp, dh, mask, t)
        da = dxz[t]
        da[...] = cell
        act.scale_grad(cache.gates[t], hs[t + 1], da)
        dh = _dropped(da @ rkt, cache.rec_mask)
        if passed is not None:
            dh += passed
    return dxz, dh


# ----- LSTM, gates i, f, o, c: c = f*c_prev + i*act(zc); h = o*act(c) ------------------------
def _gate_major(z: Array, gates: int) -> Array:
    """View an (N, k*u) array as (k, N, u): one gate's block per leading index."""
    n = z.shape[0]
    return z.reshape(n, gates, -1).transpose(1, 0, 2)


@_QUIET_OVERFLOW
def lstm_forward(
    xz: Array,
    rk: Array,
    h0: Array,
    c0: Array,
    act: GateFn,
    ract: GateFn,
    mask: Array | None = None,
    rec_mask: Array | None = None,
) -> LoopCache:
    """Gates are kept gate-major, (T, 4, N, u), so every gate op runs on a contiguous block:
    the one strided pass per step is the add of the two projections."""
    xp = backend_of(xz).xp
    steps, n, g4 = xz.shape
    u = g4 // 4
    hs = xp.empty((steps + 1, n, u), dtype=xz.dtype)
    cs = xp.empty((steps + 1, n, u), dtype=xz.dtype)
    tcs = xp.empty((steps, n, u), dtype=xz.dtype)
    gates = xp.empty((steps, 4, n, u), dtype=xz.dtype)
    hs[0], cs[0] = h0, c0
    pre = xp.empty_like(gates) if (act.needs_pre or ract.needs_pre) else None
    tmp = xp.empty((n, g4), dtype=xz.dtype)
    ig = xp.empty((n, u), dtype=xz.dtype)
    for t in range(steps):
        z = gates[t]
        xp.matmul(_dropped(hs[t], rec_mask), rk, out=tmp)
        xp.add(_gate_major(xz[t], 4), _gate_major(tmp, 4), out=z)
        if pre is not None:
            pre[t] = z
        ract.apply(z[:3], z[:3])
        act.apply(z[3], z[3])
        c = cs[t + 1]
        xp.multiply(z[1], cs[t], out=c)
        xp.multiply(z[0], z[3], out=ig)
        c += ig
        act.apply(c, tcs[t])
        xp.multiply(z[2], tcs[t], out=hs[t + 1])
        _masked_state(xp, hs[t + 1], hs[t], mask, t)
        _masked_state(xp, c, cs[t], mask, t)
    return LoopCache(hs, gates, pre, {"cs": cs, "tcs": tcs}, mask, rec_mask)


def lstm_backward(
    cache: LoopCache, rk: Array, act: GateFn, ract: GateFn, dys: Array, dh_last: Array | None
) -> tuple[Array, Array]:
    """(dxz, dh0), dxz row-major (T, N, 4u); the recurrent part's gradient equals dxz."""
    xp = backend_of(cache.hs).xp
    hs, gates, mask, pre = cache.hs, cache.gates, cache.mask, cache.pre
    cs, tcs = cache.extra["cs"], cache.extra["tcs"]
    steps, _, n, u = gates.shape
    dxz = xp.empty((steps, n, 4 * u), dtype=gates.dtype)
    dz = xp.empty((4, n, u), dtype=gates.dtype)
    dh = xp.zeros_like(hs[0]) if dh_last is None else dh_last.copy()
    dc = xp.zeros_like(hs[0])
    dtc = xp.empty_like(hs[0])
    rkt = xp.ascontiguousarray(rk.T)
    for t in range(steps - 1, -1, -1):
        if dys is not None:
            dh += dys[t]
        cell, passed = _split_dh(xp, dh, mask, t)
        dc_cell, dc_passed = _split_dh(xp, dc, mask, t)
        z = gates[t]
        xp.multiply(cell, tcs[t], out=dz[2])
        xp.multiply(cell, z[2], out=dtc)
        act.scale_grad(cs[t + 1], tcs[t], dtc)
        dc_cell += dtc
        xp.multiply(dc_cell, z[3], out=dz[0])
        xp.multiply(dc_cell, cs[t], out=dz[1])
        xp.multiply(dc_cell, z[0], out=dz[3])
        ract.scale_grad(None if pre is None else pre[t, :3], z[:3], dz[:3])
        act.scale_grad(None if pre is None else pre[t, 3], z[3], dz[3])
        dc = dc_cell * z[1]
        if dc_passed is not None:
            dc += dc_passed
        xp.copyto(_gate_major(dxz[t], 4), dz)
        dh = _dropped(dxz[t] @ rkt, cache.rec_mask)
        if passed is not None:
            dh += passed
    return dxz, dh


# ----- GRU, gates z, r, h: h = z*h_prev + (1-z)*hh ----------------------------------------------
@_QUIET_OVERFLOW
def gru_forward(
    xz: Array,
    rk: Array,
    rbias: Array | None,
    h0: Array,
    act: GateFn,
    ract: GateFn,
    reset_after: bool,
    mask: Array | None = None,
    rec_mask: Array | None = None,
) -> LoopCache:
    """reset_after: hh = act(xh + r*(h_prev @ rk_h + rb_h)); else act(xh + (r*h_prev) @ rk_h)."""
    xp = backend_of(xz).xp
    steps, n, g3 = xz.shape
    u = g3 // 3
    hs = xp.empty((steps + 1, n, u), dtype=xz.dtype)
    hs[0] = h0
    pre = xp.empty_like(xz) if (act.needs_pre or ract.needs_pre) else None
    # reset_after keeps h_prev @ rk (+ rb) per step; otherwise the reset state r*h_prev
    rec = xp.empty((steps, n, g3 if reset_after else u), dtype=xz.dtype)
    tmp = xp.empty((n, 2 * u), dtype=xz.dtype)
    for t in range(steps):
        z = xz[t]
        hp = _dropped(hs[t], rec_mask)
        if reset_after:
            r_ = rec[t]
            xp.matmul(hp, rk, out=r_)
            if rbias is not None:
                r_ += rbias
            z[:, : 2 * u] += r_[:, : 2 * u]
        else:
            xp.matmul(hp, rk[:, : 2 * u], out=tmp)
            z[:, : 2 * u] += tmp
        if pre is not None:
            pre[t, :, : 2 * u] = z[:, : 2 * u]
        ract.apply(z[:, : 2 * u], z[:, : 2 * u])
        if reset_after:
            z[:, 2 * u :] += z[:, u : 2 * u] * rec[t, :, 2 * u :]
        else:
            xp.multiply(z[:, u : 2 * u], hp, out=rec[t])
            z[:, 2 * u :] += rec[t] @ rk[:, 2 * u :]
        if pre is not None:
            pre[t, :, 2 * u :] = z[:, 2 * u :]
        hh = z[:, 2 * u :]
        act.apply(hh, hh)
        h = hs[t + 1]
        xp.subtract(hs[t], hh, out=h)
        h *= z[:, :u]
        h += hh
        _masked_state(xp, h, hs[t], mask, t)
    return LoopCache(hs, xz, pre, {"rec": rec}, mask, rec_mask)


def gru_backward(
    cache: LoopCache,
    rk: Array,
    act: GateFn,
    ract: GateFn,
    reset_after: bool,
    dys: Array,
    dh_last: Array | None,
) -> tuple[Array, Array, Array]:
    """(dxz, drz, dh0): drz is the gradient of the recurrent pre-activations (T, N, 3u)."""
    xp = backend_of(cache.hs).xp
    hs, gates, mask, pre = cache.hs, cache.gates, cache.mask, cache.pre
    rec = cache.extra["rec"]
    steps, n, g3 = gates.shape
    u = g3 // 3
    dxz = xp.empty_like(gates)
    drz = xp.empty_like(gates)
    dh = xp.zeros_like(hs[0]) if dh_last is None else dh_last.copy()
    rkt = rk.T
    rkt_h = rk[:, 2 * u :].T
    rkt_zr = rk[:, : 2 * u].T
    for t in range(steps - 1, -1, -1):
        if dys is not None:
            dh += dys[t]
        cell, passed = _split_dh(xp, dh, mask, t)
        z, dz, dr = gates[t], dxz[t], drz[t]
        hh = z[:, 2 * u :]
        xp.subtract(hs[t], hh, out=dz[:, :u])
        dz[:, :u] *= cell
        xp.multiply(cell, 1.0 - z[:, :u], out=dz[:, 2 * u :])
        act.scale_grad(None if pre is None else pre[t, :, 2 * u :], hh, dz[:, 2 * u :])
        dah = dz[:, 2 * u :]
        if reset_after:
            xp.multiply(dah, rec[t, :, 2 * u :], out=dz[:, u : 2 * u])
        else:
            drh = dah @ rkt_h
            xp.multiply(drh, _dropped(hs[t], cache.rec_mask), out=dz[:, u : 2 * u])
        ract.scale_grad(None if pre is None else pre[t, :, : 2 * u], z[:, : 2 * u], dz[:, : 2 * u])
        dr[:, : 2 * u] = dz[:, : 2 * u]
        if reset_after:
            xp.multiply(dah, z[:, u : 2 * u], out=dr[:, 2 * u :])
            dhp = dr @ rkt
        else:
            dr[:, 2 * u :] = dah
            dhp = dz[:, : 2 * u] @ rkt_zr
            dhp += drh * z[:, u : 2 * u]
        dh = _dropped(dhp, cache.rec_mask)
        dh += cell * z[:, :u]
        if passed is not None:
            dh += passed
    return dxz, drz, dh
