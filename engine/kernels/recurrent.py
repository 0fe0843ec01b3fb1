"""Fused time loops of the SimpleRNN, LSTM and GRU cells on raw, time-major backend arrays.

The input projection `x @ kernel (+ bias)` over all timesteps is done by the caller and handed
in as `xz` (T, N, G), or for the LSTM gate-major (T, 4, N, u); these loops add the recurrent
GEMM per step, apply the gates in place and keep what backpropagation through time needs.
Backward returns the gradients of the gate pre-activations for the input part (`dxz`) and,
where it differs, for the recurrent part (`drz`), row-major (T, N, G), so the caller can form
dKernel, dRecurrentKernel and dInputs as one GEMM each over many timesteps. Gates are in the
order the caller lays them out: LSTM i, f, o, c (the three sigmoid gates side by side, each
gate one contiguous block), GRU z, r, h (Keras's order).

The full-sequence GEMMs need not wait for the whole loop: `Ahead` and `Behind` run them in
time chunks on one worker thread while the loop goes on (NumPy's BLAS calls release the GIL), so
on two cores they hide behind the loop's small per-step calls. The loops call a step hook for
that: forward before it reads `xz[t]`, backward once `dxz[t]` and `drz[t]` are final.

The LSTM's loop with sigmoid gates and a tanh cell, without masks or recurrent dropout, runs
compiled when it can (`native.lstm_forward_loop`, `lstm_backward_loop`: NumPy arrays, batch
and units of at least 2, NumPy's sgemm found): one call per direction, bit-identical to the
loop here. Forward, it takes every input projection first (`ready` at each chunk's first step,
so both threads share them), then runs the batch's `row_halves` on two threads; backward, it
calls the hook only at the first step of each `backward_chunk_bounds` chunk, the only steps
where `Behind` acts.

A mask (T, N, 1) bool keeps, for a False entry, the previous state (and so the previous
output), as Keras does. `rec_mask` (N, units) is the recurrent dropout mask applied to the
state that enters the recurrent GEMM.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

import engine.native as native
from engine.backend import backend_of
from engine.kernels.chunk_tasks import Tasks
from engine.kernels.gate_exp import gate_exp, tanh_by_exp

Array = Any
StepHook = Callable[[int], None]
ChunkJob = Callable[[int, int], None]
# backward's hook: (t, dxz, drz) once step t of both is final
GradHook = Callable[[int, Array, Array], None]
GradChunkJob = Callable[[int, int, Array, Array], None]
_QUIET_OVERFLOW = np.errstate(over="ignore")


class Activation(Protocol):
    """What a gate needs of an activation (`engine.activations.Activation` fits), so that
    kernels know no layer-side module."""

    @property
    def name(self) -> str: ...

    @property
    def args(self) -> dict[str, Any]: ...

    def __call__(self, x: Array) -> Array: ...

    def grad(self, x: Array, y: Array, dy: Array) -> Array: ...


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


# The first chunk is computed before the forward loop starts and is the last one the backward
# loop hands over, so it is short; the others are long enough for efficient GEMMs.
FIRST_CHUNK = 4
CHUNK = 16


def chunk_bounds(steps: int) -> list[tuple[int, int]]:
    """[t0, t1) time chunks covering 0..steps, ascending: a short one, then CHUNK steps each."""
    edges = [0, *range(min(FIRST_CHUNK, steps), steps, CHUNK), steps]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def backward_chunk_bounds(steps: int) -> list[tuple[int, int]]:
    """`chunk_bounds` mirrored in time, ascending: the backward loop runs from the last step
    down, so its short chunk comes first and the worker gets its first products after
    FIRST_CHUNK steps instead of CHUNK (the weight gradients' time chunks then differ from
    the forward's, which changes their rounding, the same on every path)."""
    return [(steps - b, steps - a) for a, b in reversed(chunk_bounds(steps))]


class Ahead:
    """Runs `job(t0, t1)` for every time chunk ahead of a forward loop; call it with t per step.

    The first chunk runs at once on the calling thread, the others on the worker (or here,
    see `chunk_tasks.Tasks.need`); step t waits only when it is the first step of a chunk that
    is not finished yet.
    """

    def __init__(self, job: ChunkJob, steps: int) -> None:
        self.tasks = Tasks()
        self.index: dict[int, int] = {}
        for n, (t0, t1) in enumerate(chunk_bounds(steps)):
            self.index[t0] = self.tasks.add(functools.partial(job, t0, t1), share=n > 0)
            if n == 0:
                self.tasks.need(0)

    def __call__(self, t: int) -> None:
        index = self.index.get(t)
        if index:
            self.tasks.need(index)


class Behind:
    """Runs each of `jobs(t0, t1, dxz, drz)` on the worker once a backward loop has done steps
    t0..t1-1, for the chunks of `backward_chunk_bounds`; separate jobs per chunk let the two
    threads share the end finely."""

    def __init__(self, jobs: Sequence[GradChunkJob], steps: int) -> None:
        self.jobs = jobs
        self.ends = dict(backward_chunk_bounds(steps))
        self.tasks = Tasks()

    def __call__(self, t: int, dxz: Array, drz: Array) -> None:
        t1 = self.ends.get(t)
        if t1 is not None:
            for job in self.jobs:
                self.tasks.add(functools.partial(job, t, t1, dxz, drz))

    def finish(self) -> None:
        """Wait for every chunk, running the ones the worker has not started here (from the last
        down); a chunk's error is raised here."""
        self.tasks.finish()


def backward_chunk_starts(steps: int) -> np.ndarray:
    """(steps,) bool, True at the first step of each `backward_chunk_bounds` chunk: where the
    compiled backward loop calls its hook."""
    at = np.zeros(steps, dtype=bool)
    at[[t0 for t0, _ in backward_chunk_bounds(steps)]] = True
    return at


def _call(hook: StepHook | None, t: int) -> None:
    if hook is not None:
        hook(t)


def _done(hook: GradHook | None, t: int, dxz: Array, drz: Array) -> None:
    if hook is not None:
        hook(t, dxz, drz)


def _done_at(done: GradHook, dxz: Array, t: int) -> None:
    """`done` for a loop whose two gradients are one array (the LSTM's)."""
    done(t, dxz, dxz)


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


def recurrent_inputs(cache: LoopCache, t0: int, t1: int) -> Array:
    """The states that entered the recurrent GEMM at steps t0..t1-1, (t1-t0, N, u), dropped."""
    hp = cache.hs[t0:t1]
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
    ready: StepHook | None = None,
) -> LoopCache:
    xp = backend_of(xz).xp
    steps, n, u = xz.shape
    hs = xp.empty((steps + 1, n, u), dtype=xz.dtype)
    hs[0] = h0
    tmp = xp.empty((n, u), dtype=xz.dtype)
    for t in range(steps):
        _call(ready, t)
        xp.matmul(_dropped(hs[t], rec_mask), rk, out=tmp)
        tmp += xz[t]
        xz[t] = tmp  # keep the pre-activation: h = act(z) is then enough for any activation
        act.apply(tmp, hs[t + 1])
        _masked_state(xp, hs[t + 1], hs[t], mask, t)
    return LoopCache(hs, xz, xz, {}, mask, rec_mask)


def simple_backward(
    cache: LoopCache,
    rk: Array,
    act: GateFn,
    dys: Array,
    dh_last: Array | None,
    done: GradHook | None = None,
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
        _done(done, t, dxz, dxz)
    return dxz, dh


# ----- LSTM, gates i, f, o, c: c = f*c_prev + i*act(zc); h = o*act(c) ------------------------
# With sigmoid gates and a tanh cell input, pre-activations scaled by these factors (exact: a
# sign and powers of two) let one exp serve all four gates: sigmoid(z) = 1 / (1 + exp(-z)) and
# tanh(z) = 2 / (1 + exp(-2z)) - 1; the cell output tanh(c) takes the same form. That exp is
# `gate_exp`, whose operations a compiled step repeats bit for bit.
_EXP_GATE_SCALE = (-1.0, -1.0, -1.0, -2.0)


def lstm_gate_scale(act: GateFn, ract: GateFn) -> tuple[float, ...] | None:
    """The factors (gate order i, f, o, c) the LSTM's `xz` must be scaled by for these gate
    activations, or None when the loop applies the activations as they are."""
    return _EXP_GATE_SCALE if (ract.kind, act.kind) == ("sigmoid", "tanh") else None


@functools.cache
def gate_scale_array(xp: Any, dtype: Any) -> Array:
    """`lstm_gate_scale`'s factors as a (4, 1, 1) array on `xp`'s device, made once: built
    from the host tuple at each call, it was a host -> device copy per step on a GPU."""
    return xp.asarray(_EXP_GATE_SCALE, dtype=dtype).reshape(4, 1, 1)


def lstm_project(xt: Array, kernel: Array, bias: Array | None, scaled: bool, out: Array) -> None:
    """out = xt[:, None] @ kernel (+ bias), times `gate_scale_array` when `scaled`: a chunk's
    gate-major input projections (C, 4, N, u) from its inputs (C, N, F) and the kernel
    (4, F, u). Compiled where it can (`native.lstm_project`, same bits): NumPy makes the bias
    and the scale a pass each over the chunk, a fifth of the projection's time."""
    xp = backend_of(xt).xp
    scale = gate_scale_array(xp, out.dtype) if scaled else None
    if native.lstm_project(xt, kernel, bias, scale, out):
        return
    xp.matmul(xt[:, None], kernel, out=out)
    if bias is not None:
        out += bias
    if scale is not None:
        out *= scale


def _cell_by_exp(z: Array, c_prev: Array, c: Array, ig: Array) -> None:
    """Scaled pre-activations (4, N, u) -> sigmoid i, f, o and tanh g in place, then the cell
    state c = f * c_prev + i * g (`native.lstm_forward_steps` does this, the recurrent sum
    before it and the cell output after it in one pass)."""
    xp = backend_of(z).xp
    gate_exp(z)
    z += 1.0
    xp.reciprocal(z, out=z)
    z[3] *= 2.0
    z[3] -= 1.0
    _new_cell(z, c_prev, c, ig)


def _cell_by_fn(act: GateFn, ract: GateFn, z: Array, c_prev: Array, c: Array, ig: Array) -> None:
    ract.apply(z[:3], z[:3])
    act.apply(z[3], z[3])
    _new_cell(z, c_prev, c, ig)


def _new_cell(z: Array, c_prev: Array, c: Array, ig: Array) -> None:
    xp = backend_of(z).xp
    xp.multiply(z[1], c_prev, out=c)
    xp.multiply(z[0], z[3], out=ig)
    c += ig


def row_halves(n: int) -> list[slice]:
    """The batch's rows whose recurrent products the LSTM's forward loop takes apart: two
    halves from 4 rows on. The compiled loop runs the halves on two threads (each row's
    recurrence is its own); the host's Python loop takes the same products, so both give the
    same bits."""
    return [slice(0, n // 2), slice(n // 2, n)] if n >= 4 else [slice(0, n)]


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
    ready: StepHook | None = None,
) -> LoopCache:
    """Gate-major throughout: `xz` is (T, 4, N, u) and becomes the gate activations in place,
    `rk` is (4, u, u), so every gate op runs on one contiguous block (a row-major (N, 4u) add
    of the two projections into gate-major blocks cost as much as the recurrent GEMM).

    When `lstm_gate_scale(act, ract)` is not None, `xz` arrives already scaled by it (the
    caller scales its projection) and the loop scales `rk` to match.
    """
    xp = backend_of(xz).xp
    steps, _, n, u = xz.shape
    scale = lstm_gate_scale(act, ract)
    cell_fn: Callable[[Array, Array, Array, Array], None]
    if scale is None:
        cell_fn = functools.partial(_cell_by_fn, act, ract)
    else:
        cell_fn = _cell_by_exp
        rk = rk * gate_scale_array(xp, rk.dtype)
    hs = xp.empty((steps + 1, n, u), dtype=xz.dtype)
    cs = xp.empty((steps + 1, n, u), dtype=xz.dtype)
    tcs = xp.empty((steps, n, u), dtype=xz.dtype)
    hs[0], cs[0] = h0, c0
    pre = xp.empty_like(xz) if (act.needs_pre or ract.needs_pre) else None
    rec = xp.empty((4, n, u), dtype=xz.dtype)
    ig = xp.empty((n, u), dtype=xz.dtype)
    cell_out = act.apply if scale is None else tanh_by_exp
    compiled = native.lstm_forward_steps(xz, rec, cs, tcs, hs) if scale is not None else None
    if compiled is not None and mask is None and rec_mask is None:
        for t0, _ in chunk_bounds(steps):  # every input projection, on both threads
            _call(ready, t0)
        if native.lstm_forward_loop(xz, rk, cs, tcs, hs):
            return LoopCache(hs, xz, pre, {"cs": cs, "tcs": tcs}, mask, rec_mask)
    halves = row_halves(n) if isinstance(xz, np.ndarray) else [slice(0, n)]
    for t in range(steps):
        _call(ready, t)
        z = xz[t]
        h = _dropped(hs[t], rec_mask)
        for rows in halves:
            xp.matmul(h[rows], rk, out=rec[:, rows])
        c = cs[t + 1]
        if compiled is not None:
            compiled(t)
        else:
            z += rec
            if pre is not None:
                pre[t] = z
            cell_fn(z, cs[t], c, ig)
            cell_out(c, tcs[t])
            xp.multiply(z[2], tcs[t], out=hs[t + 1])
        _masked_state(xp, hs[t + 1], hs[t], mask, t)
        _masked_state(xp, c, cs[t], mask, t)
    return LoopCache(hs, xz, pre, {"cs": cs, "tcs": tcs}, mask, rec_mask)


def lstm_backward(
    cache: LoopCache,
    rk: Array,
    act: GateFn,
    ract: GateFn,
    dys: Array,
    dh_last: Array | None,
    done: GradHook | None = None,
) -> tuple[Array, Array]:
    """(dxz, dh0), dxz row-major (T, N, 4u) in the loop's gate order; it is also drz.

    Row-major output costs one strided copy per step but lets the caller's weight-gradient
    GEMMs run on plain matrices, which measured cheaper overall than keeping it gate-major.
    """
    xp = backend_of(cache.hs).xp
    hs, gates, mask, pre = cache.hs, cache.gates, cache.mask, cache.pre
    cs, tcs = cache.extra["cs"], cache.extra["tcs"]
    steps, _, n, u = gates.shape
    dxz = xp.empty((steps, n, 4 * u), dtype=gates.dtype)
    dz = xp.empty((4, n, u), dtype=gates.dtype)
    dh = xp.zeros_like(hs[0]) if dh_last is None else dh_last.copy()
    dc = xp.zeros_like(hs[0])
    dtc = xp.empty_like(hs[0])
    rkt = xp.ascontiguousarray(rk.transpose(1, 0, 2).reshape(u, 4 * u).T)
    compiled = None
    if mask is None and pre is None and lstm_gate_scale(act, ract) is not None:
        compiled = native.lstm_backward_steps(dh, dc, gates, tcs, cs, dxz)
    if compiled is not None and cache.rec_mask is None:
        hook = None if done is None else functools.partial(_done_at, done, dxz)
        at = backward_chunk_starts(steps)
        if native.lstm_backward_loop(dh, dc, gates, tcs, cs, rkt, dxz, dys, at, hook):
            return dxz, dh
    for t in range(steps - 1, -1, -1):
        if dys is not None:
            dh += dys[t]
        passed = None
        if compiled is not None:
            compiled(t, dh)
        else:
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
            xp.copyto(dxz[t].reshape(n, 4, u).transpose(1, 0, 2), dz)
        dh = _dropped(dxz[t] @ rkt, cache.rec_mask)
        if passed is not None:
            dh += passed
        _done(done, t, dxz, dxz)
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
    ready: StepHook | None = None,
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
        _call(ready, t)
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
    done: GradHook | None = None,
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
        _done(done, t, dxz, drz)
    return dxz, drz, dh
