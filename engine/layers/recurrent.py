"""SimpleRNN, LSTM and GRU: Keras 3's recurrent layers over (batch, timesteps, features) inputs.

Shapes: (N, T, F) -> (N, units), or (N, T, units) with `return_sequences`. Weights, in Keras's
layouts: kernel (F, k*units), recurrent_kernel (units, k*units), bias, with k = 1 (SimpleRNN),
4 (LSTM, gates i, f, c, o) or 3 (GRU, gates z, r, h). Example: `LSTM(64)` on 64 features has
4 * (64 * (64 + 64) + 64) = 33024 parameters.

The input projection and the weight/input gradients are GEMMs over chunks of timesteps that
run on a worker thread alongside the time loop (`engine.kernels.recurrent`, `Ahead`/`Behind`;
the LSTM keeps its gates gate-major, (T, 4, N, u); its loop runs compiled, in one call per
direction, for float32 NumPy arrays with the default sigmoid and tanh, no mask and no
`recurrent_dropout`, see `engine.kernels.recurrent`). Masked timesteps (`ctx.mask`, (N, T)
bool) keep the previous state. `dropout` masks the inputs and `recurrent_dropout` the state
entering the recurrent GEMM, one mask per sequence as in Keras 3; for GRU the update
`z*h_prev + (1-z)*hh` uses the undropped state. `stateful=True` carries the final states of
one call into the next until `reset_states()`; the batch size must stay the same between
resets (Keras asks for a fixed batch size for the same reason), otherwise a ValueError says so.

Forward and backward run with one BLAS thread (`fused.blas_threads.single_threaded_blas`): on a
busy 2-core machine a 2-thread OpenBLAS made W4 5-40x slower; the second core is used by the
worker thread instead, whose chunks the loop's thread runs itself when the worker lags.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from engine import activations
from engine import initializers as _initializers
from engine.activations import ActivationSpec
from engine.constraints import ConstraintSpec
from engine.initializers import InitializerSpec
from engine.layers.base import (
    Array,
    CallContext,
    Layer,
    LayerConfig,
    ShapeError,
    WeightSpec,
    configured_weight,
)
from engine.layers.registry import register
from engine.lazy import backend, blas_threads, tensor
from engine.lazy import numpy as np
from engine.lazy import recurrent_kernels as K
from engine.regularizers import RegularizerSpec


def _raw(value: Any) -> Any:
    """The backend array of a Tensor (masks and inputs may come either way)."""
    return value.data if isinstance(value, tensor.Tensor) else value


def _input_steps(steps: int, t0: int, t1: int, backwards: bool) -> slice:
    """The input timesteps the loop's steps t0..t1-1 read, in loop order."""
    if not backwards:
        return slice(t0, t1)
    return slice(steps - 1 - t0, steps - 1 - t1 if t1 < steps else None, -1)


class RNNConfig(LayerConfig):
    """Arguments shared by SimpleRNN, LSTM and GRU (Keras 3 names and defaults)."""

    units: PositiveInt
    activation: ActivationSpec = "tanh"
    use_bias: bool = True
    kernel_initializer: InitializerSpec = "glorot_uniform"
    recurrent_initializer: InitializerSpec = "orthogonal"
    bias_initializer: InitializerSpec = "zeros"
    kernel_regularizer: RegularizerSpec | None = None
    recurrent_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    kernel_constraint: ConstraintSpec | None = None
    recurrent_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    recurrent_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    return_sequences: bool = False
    go_backwards: bool = False
    stateful: bool = False


class SimpleRNNConfig(RNNConfig):
    type: Literal["SimpleRNN"] = "SimpleRNN"


class LSTMConfig(RNNConfig):
    type: Literal["LSTM"] = "LSTM"
    recurrent_activation: ActivationSpec = "sigmoid"
    unit_forget_bias: bool = True


class GRUConfig(RNNConfig):
    type: Literal["GRU"] = "GRU"
    recurrent_activation: ActivationSpec = "sigmoid"
    reset_after: bool = True


class ForgetBiasInitializer:
    """Keras's `unit_forget_bias`: the bias initializer, with the forget gate's slice set to 1."""

    def __init__(self, base: Any, units: int) -> None:
        self.base = base
        self.units = units

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> Any:
        value = _initializers.get(self.base)(shape, rng, dtype)
        value[self.units : 2 * self.units] = 1.0
        return value

    def __repr__(self) -> str:
        return f"unit_forget_bias({_initializers.serialize(self.base)!r})"


@dataclass
class CellWeights:
    """The weights in the loop's gate order: input bias added to `xz`, recurrent bias per step."""

    kernel: Array
    recurrent: Array
    bias: Array | None
    recurrent_bias: Array | None = None


class RNNBase(Layer):
    """The parts of SimpleRNN, LSTM and GRU that do not depend on the cell."""

    gates: ClassVar[int] = 1
    n_states: ClassVar[int] = 1
    positional = ("units",)
    supports_masking = True
    config: RNNConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._states: list[Array] | None = None

    # Made on first use (then plain attributes), so that a spec check loads no kernels.
    @functools.cached_property
    def act(self) -> K.GateFn:
        return K.GateFn(activations.get(self.config.activation))

    @functools.cached_property
    def ract(self) -> K.GateFn:
        return K.GateFn(activations.get(getattr(self.config, "recurrent_activation", None)))

    # ----- shapes and weights ------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Any) -> Any:
        if len(input_shape) != 3:
            raise ShapeError(
                f"{self.type_name} needs a 3D input (batch, timesteps, features); "
                f"got {input_shape}",
                hint="add a Reshape or an Embedding before it",
            )
        if input_shape[-1] is None:
            raise ShapeError(f"{self.type_name} needs a known feature size; got None")
        units = self.config.units
        if self.config.return_sequences:
            return (input_shape[0], input_shape[1], units)
        return (input_shape[0], units)

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.config.units,)

    def bias_initializer(self) -> Any:
        return self.config.bias_initializer

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        self.compute_output_shape(input_shape)
        width = self.gates * c.units
        specs = [
            configured_weight(c, "kernel", (int(input_shape[-1]), width)),
            configured_weight(c, "recurrent_kernel", (c.units, width), prefix="recurrent"),
        ]
        if c.use_bias:
            specs.append(
                WeightSpec(
                    "bias",
                    self.bias_shape(),
                    self.bias_initializer(),
                    True,
                    c.bias_regularizer,
                    c.bias_constraint,
                )
            )
        return specs

    def flops(self, input_shape: Any) -> int:
        steps = input_shape[1] or 1
        u, f, width = self.config.units, int(input_shape[-1]), self.gates * self.config.units
        return steps * (2 * (f + u) * width + 4 * width)

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return mask if self.config.return_sequences else None

    # ----- state -------------------------------------------------------------------------------
    def reset_states(self) -> None:
        """Forget the carried states: the next call of a stateful layer starts from zeros."""
        self._states = None

    def _initial_states(self, xp: Any, n: int, dtype: Any) -> list[Array]:
        u = self.config.units
        if self.config.stateful and self._states is not None:
            if self._states[0].shape[0] != n:
                raise ValueError(
                    f"stateful layer {self.name!r} carries states for a batch of "
                    f"{self._states[0].shape[0]}; got a batch of {n}. Use one batch size "
                    "(drop the last partial batch) or call reset_states() first"
                )
            return [s.astype(dtype, copy=False) for s in self._states]
        return [xp.zeros((n, u), dtype=dtype) for _ in range(self.n_states)]

    # ----- the cell, per subclass --------------------------------------------------------------
    def cell_weights(self, params: list[Array]) -> CellWeights:
        return CellWeights(params[0], params[1], params[2] if self.config.use_bias else None)

    def run(
        self,
        xz: Array,
        w: CellWeights,
        states: list[Array],
        mask: Any,
        rdp: Any,
        ready: K.StepHook,
    ) -> K.LoopCache:
        raise NotImplementedError

    def final_states(self, loop: K.LoopCache) -> list[Array]:
        return [loop.hs[-1]]

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any, done: K.GradHook
    ) -> tuple[Array, Array, Array]:
        """(dxz, drz, dh0) in the loop's gate order."""
        raise NotImplementedError

    # ----- the projection GEMMs, in the loop's layout ------------------------------------------
    def projection_shape(self, steps: int, n: int) -> tuple[int, ...]:
        """The shape of `xz`, the input projections of all timesteps."""
        return (steps, n, self.gates * self.config.units)

    def project(self, xt: Array, w: CellWeights, out: Array) -> None:
        """out = xt @ kernel (+ bias) for a chunk of timesteps xt (C, N, F)."""
        backend.backend_of(xt).xp.matmul(
            xt.reshape(-1, xt.shape[-1]), w.kernel, out=out.reshape(-1, out.shape[-1])
        )
        if w.bias is not None:
            out += w.bias

    def input_grad(self, g: Array, w: CellWeights) -> Array:
        """dInputs (C*N, F) of a chunk from its dxz as a (C*N, G) matrix."""
        return g @ w.kernel.T

    def recurrent_grad(self, loop: K.LoopCache, gr: Array, t0: int, t1: int) -> Array:
        """dRecurrentKernel's share of steps t0..t1-1 (gr: that chunk of drz, (C*N, G))."""
        hp = K.recurrent_inputs(loop, t0, t1)
        return hp.reshape(-1, self.config.units).T @ gr

    def bias_grads(self, gx: Array, gr: Array) -> Array:
        return gx.sum(axis=0)

    def to_layout(self, g: Array) -> Array:
        """A gradient in the loop's layout -> Keras's layout (identity but for LSTM)."""
        return g

    # ----- forward / backward ------------------------------------------------------------------
    def _dropout(self, ctx: CallContext, rate: float, shape: tuple[int, ...], like: Array) -> Any:
        if not (ctx.training and rate > 0.0):
            return None
        keep = (ctx.rng.random(shape) >= rate) / (1.0 - rate)
        return backend.backend_of(like).asarray(keep, dtype=like.dtype)

    def _time_mask(self, mask: Any, xp: Any) -> Any:
        if mask is None:
            return None
        m = xp.asarray(_raw(mask), dtype=bool).T[:, :, None]
        return m[::-1] if self.config.go_backwards else m

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        with blas_threads.single_threaded_blas():
            return self._forward(params, inputs, ctx)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        with blas_threads.single_threaded_blas():
            return self._backward(params, cache, grad_output, grads, ctx)

    def _forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        c = self.config
        xp = backend.backend_of(inputs).xp
        n, steps, f = inputs.shape
        dp = self._dropout(ctx, c.dropout, (n, f), inputs)
        rdp = self._dropout(ctx, c.recurrent_dropout, (n, c.units), inputs)
        w = self.cell_weights(params)
        xt = xp.empty((steps, n, f), dtype=inputs.dtype)
        xz = xp.empty(self.projection_shape(steps, n), dtype=inputs.dtype)

        def project(t0: int, t1: int) -> None:
            """xt and xz = xt @ kernel (+ bias) for steps t0..t1-1, time-major."""
            chunk = xt[t0:t1]
            chunk[...] = inputs[:, _input_steps(steps, t0, t1, c.go_backwards)].transpose(1, 0, 2)
            if dp is not None:
                chunk *= dp
            self.project(chunk, w, xz[t0:t1])

        states = self._initial_states(xp, n, inputs.dtype)
        loop = self.run(
            xz,
            w,
            states,
            self._time_mask(ctx.mask, xp),
            rdp,
            K.Ahead(project, steps),
        )
        if c.stateful:
            self._states = [s.copy() for s in self.final_states(loop)]
        if c.return_sequences:
            out = xp.ascontiguousarray(loop.hs[1:].transpose(1, 0, 2))
        else:
            out = loop.hs[-1].copy()
        return out, (xt, w, loop, dp)

    def _backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        c = self.config
        xp = backend.backend_of(grad_output).xp
        xt, w, loop, dp = cache
        steps, n, f = xt.shape
        if c.return_sequences:
            dys, dh_last = xp.ascontiguousarray(grad_output.transpose(1, 0, 2)), None
        else:
            dys, dh_last = None, grad_output
        acc = _GradChunks(self, loop, w, xt, dp, ctx.need_input_grad, grads)
        behind = K.Behind(acc.jobs(), steps)
        self.run_backward(loop, w, dys, dh_last, behind)
        behind.finish()
        acc.store()
        return acc.dx


class _GradChunks:
    """The weight and input gradients of one backward call, built a time chunk at a time.

    Each chunk's GEMMs run on the worker thread while the loop goes on; the per-chunk weight
    gradients are summed in time order at the end, so the result does not depend on timing.
    """

    def __init__(
        self,
        layer: RNNBase,
        loop: K.LoopCache,
        w: CellWeights,
        xt: Array,
        dp: Any,
        need_input_grad: bool,
        grads: list[Array | None],
    ) -> None:
        steps, n, f = xt.shape
        self.layer, self.loop, self.w, self.xt, self.dp, self.grads = layer, loop, w, xt, dp, grads
        self.wanted = [g is not None for g in grads]
        self.parts: dict[int, list[Array | None]] = {}
        xp = backend.backend_of(xt).xp
        self.dx = xp.empty((n, steps, f), dtype=xt.dtype) if need_input_grad else None

    def jobs(self) -> list[K.GradChunkJob]:
        """The chunk jobs this call needs, kept apart so that the loop's thread and the worker
        share the end of the backward pass finely: kernel (and bias), recurrent kernel, input."""
        bias = self.layer.config.use_bias and self.wanted[2]
        wanted = [self.wanted[0] or bias, self.wanted[1], self.dx is not None]
        every = [self.kernel_part, self.recurrent_part, self.input_part]
        return [job for job, want in zip(every, wanted, strict=True) if want]

    def _slots(self, t0: int) -> list[Array | None]:
        return self.parts.setdefault(t0, [None] * len(self.grads))

    @staticmethod
    def _rows(dxz: Array, drz: Array, t0: int, t1: int) -> tuple[Array, Array]:
        gx = dxz[t0:t1].reshape(-1, dxz.shape[-1])
        return gx, gx if drz is dxz else drz[t0:t1].reshape(-1, drz.shape[-1])

    def kernel_part(self, t0: int, t1: int, dxz: Array, drz: Array) -> None:
        """dKernel's and the bias's shares of steps t0..t1-1 (dxz and drz final there)."""
        gx, gr = self._rows(dxz, drz, t0, t1)
        slots = self._slots(t0)
        if self.wanted[0]:
            slots[0] = self.xt[t0:t1].reshape(-1, self.xt.shape[-1]).T @ gx
        if self.layer.config.use_bias and self.wanted[2]:
            slots[2] = self.layer.bias_grads(gx, gr)

    def recurrent_part(self, t0: int, t1: int, dxz: Array, drz: Array) -> None:
        gx, gr = self._rows(dxz, drz, t0, t1)
        self._slots(t0)[1] = self.layer.recurrent_grad(self.loop, gr, t0, t1)

    def input_part(self, t0: int, t1: int, dxz: Array, drz: Array) -> None:
        assert self.dx is not None
        steps, n, f = self.xt.shape
        d = self.layer.input_grad(self._rows(dxz, drz, t0, t1)[0], self.w).reshape(t1 - t0, n, f)
        if self.dp is not None:
            d *= self.dp
        self.dx[:, _input_steps(steps, t0, t1, self.layer.config.go_backwards)] = d.transpose(
            1, 0, 2
        )

    def store(self) -> None:
        """Sum the chunks' weight gradients in time order into `grads`, in Keras's layout."""
        ordered = [self.parts[t0] for t0 in sorted(self.parts)]
        for i, grad in enumerate(self.grads):
            shares = [share for part in ordered if (share := part[i]) is not None]
            if grad is None or not shares:
                continue
            total = shares[0].copy()
            for share in shares[1:]:
                total += share
            grad[...] = self.layer.to_layout(total)


@register
class SimpleRNN(RNNBase):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias); units*(F+units)+units."""

    type_name = "SimpleRNN"
    config_class = SimpleRNNConfig

    def run(
        self,
        xz: Array,
        w: CellWeights,
        states: list[Array],
        mask: Any,
        rdp: Any,
        ready: K.StepHook,
    ) -> K.LoopCache:
        return K.simple_forward(xz, w.recurrent, states[0], self.act, mask, rdp, ready)

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any, done: K.GradHook
    ) -> tuple[Array, Array, Array]:
        dxz, dh0 = K.simple_backward(loop, w.recurrent, self.act, dys, dh_last, done)
        return dxz, dxz, dh0


# Keras's LSTM gates i, f, c, o -> the loop's i, f, o, c, and back (the swap is its own inverse)
_LSTM_GATES = [0, 1, 3, 2]


def _keras_columns(units: int) -> np.ndarray:
    """Column order taking the loop's (.., 4u) gate blocks i, f, o, c to Keras's i, f, c, o."""
    return (np.array(_LSTM_GATES)[:, None] * units + np.arange(units)).reshape(-1)


@register
class LSTM(RNNBase):
    """Gates i, f, c, o: c_t = f*c_{t-1} + i*tanh(zc); h_t = o*tanh(c_t); 4*(u*(F+u)+u) params."""

    type_name = "LSTM"
    config_class = LSTMConfig
    gates = 4
    n_states = 2
    config: LSTMConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keras_columns = _keras_columns(self.config.units)

    def bias_initializer(self) -> Any:
        c = self.config
        if c.unit_forget_bias:
            return ForgetBiasInitializer(c.bias_initializer, c.units)
        return c.bias_initializer

    def cell_weights(self, params: list[Array]) -> CellWeights:
        """Gate-major weights in the loop's order: kernel (4, F, u), recurrent (4, u, u), bias
        (4, 1, u)."""
        xp = backend.backend_of(params[0]).xp
        u = self.config.units

        def gate_major(m: Array) -> Array:
            return xp.ascontiguousarray(
                m.reshape(m.shape[0], 4, u)[:, _LSTM_GATES].transpose(1, 0, 2)
            )

        bias = params[2].reshape(4, 1, u)[_LSTM_GATES] if self.config.use_bias else None
        return CellWeights(gate_major(params[0]), gate_major(params[1]), bias)

    def projection_shape(self, steps: int, n: int) -> tuple[int, ...]:
        return (steps, 4, n, self.config.units)

    def project(self, xt: Array, w: CellWeights, out: Array) -> None:
        """Gate-major projections, scaled as `K.lstm_forward` wants them (exact: see
        `K.lstm_gate_scale`)."""
        scaled = K.lstm_gate_scale(self.act, self.ract) is not None
        K.lstm_project(xt, w.kernel, w.bias, scaled, out)

    def input_grad(self, g: Array, w: CellWeights) -> Array:
        u = self.config.units
        return g @ w.kernel.transpose(1, 0, 2).reshape(-1, 4 * u).T

    def to_layout(self, g: Array) -> Array:
        """Columns in the loop's gate order i, f, o, c -> Keras's i, f, c, o."""
        return g[..., self._keras_columns]

    def run(
        self,
        xz: Array,
        w: CellWeights,
        states: list[Array],
        mask: Any,
        rdp: Any,
        ready: K.StepHook,
    ) -> K.LoopCache:
        return K.lstm_forward(
            xz, w.recurrent, states[0], states[1], self.act, self.ract, mask, rdp, ready
        )

    def final_states(self, loop: K.LoopCache) -> list[Array]:
        return [loop.hs[-1], loop.extra["cs"][-1]]

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any, done: K.GradHook
    ) -> tuple[Array, Array, Array]:
        dxz, dh0 = K.lstm_backward(loop, w.recurrent, self.act, self.ract, dys, dh_last, done)
        return dxz, dxz, dh0


@register
class GRU(RNNBase):
    """Gates z, r, h: h_t = z*h_{t-1} + (1-z)*hh. reset_after (default): 3*(u*(F+u)+2u) params."""

    type_name = "GRU"
    config_class = GRUConfig
    gates = 3
    config: GRUConfig

    def bias_shape(self) -> tuple[int, ...]:
        width = 3 * self.config.units
        return (2, width) if self.config.reset_after else (width,)

    def cell_weights(self, params: list[Array]) -> CellWeights:
        c = self.config
        if not c.use_bias:
            return CellWeights(params[0], params[1], None)
        if c.reset_after:
            return CellWeights(params[0], params[1], params[2][0], params[2][1])
        return CellWeights(params[0], params[1], params[2])

    def run(
        self,
        xz: Array,
        w: CellWeights,
        states: list[Array],
        mask: Any,
        rdp: Any,
        ready: K.StepHook,
    ) -> K.LoopCache:
        return K.gru_forward(
            xz,
            w.recurrent,
            w.recurrent_bias,
            states[0],
            self.act,
            self.ract,
            self.config.reset_after,
            mask,
            rdp,
            ready,
        )

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any, done: K.GradHook
    ) -> tuple[Array, Array, Array]:
        return K.gru_backward(
            loop, w.recurrent, self.act, self.ract, self.config.reset_after, dys, dh_last, done
        )

    def recurrent_grad(self, loop: K.LoopCache, gr: Array, t0: int, t1: int) -> Array:
        if self.config.reset_after:
            return super().recurrent_grad(loop, gr, t0, t1)
        u = self.config.units
        xp = backend.backend_of(gr).xp
        hp = K.recurrent_inputs(loop, t0, t1).reshape(-1, u)
        rh = loop.extra["rec"][t0:t1].reshape(-1, u)
        return xp.concatenate([hp.T @ gr[:, : 2 * u], rh.T @ gr[:, 2 * u :]], axis=1)

    def bias_grads(self, gx: Array, gr: Array) -> Array:
        if self.config.reset_after:
            xp = backend.backend_of(gx).xp
            return xp.stack([gx.sum(axis=0), gr.sum(axis=0)])
        return gx.sum(axis=0)
