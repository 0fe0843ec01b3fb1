"""SimpleRNN, LSTM and GRU: Keras 3's recurrent layers over (batch, timesteps, features) inputs.

Shapes: (N, T, F) -> (N, units), or (N, T, units) with `return_sequences`. Weights, in Keras's
layouts: kernel (F, k*units), recurrent_kernel (units, k*units), bias, with k = 1 (SimpleRNN),
4 (LSTM, gates i, f, c, o) or 3 (GRU, gates z, r, h). Example: `LSTM(64)` on 64 features has
4 * (64 * (64 + 64) + 64) = 33024 parameters.

The input projection is one GEMM over all timesteps; the time loop lives in
`engine.kernels.recurrent`. Masked timesteps (`ctx.mask`, (N, T) bool) keep the previous state.
`dropout` masks the inputs and `recurrent_dropout` the state entering the recurrent GEMM, one
mask per sequence as in Keras 3; for GRU the update `z*h_prev + (1-z)*hh` uses the undropped
state. `stateful=True` carries the final states of one call into the next until
`reset_states()`; the batch size must stay the same between resets (Keras asks for a fixed
batch size for the same reason), otherwise a ValueError says so.

Forward and backward run with one BLAS thread (`kernels.recurrent.single_threaded_blas`): on a
busy 2-core machine a 2-thread OpenBLAS made W4 5-40x slower, single-threaded it kept pace
with PyTorch's best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PositiveInt

from engine import activations
from engine import initializers as _initializers
from engine.activations import ActivationSpec
from engine.backend import backend_of
from engine.constraints import ConstraintSpec
from engine.initializers import InitializerSpec
from engine.kernels import recurrent as K
from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError, WeightSpec
from engine.layers.registry import register
from engine.regularizers import RegularizerSpec
from engine.tensor import Tensor


def _raw(value: Any) -> Any:
    """The backend array of a Tensor (masks and inputs may come either way)."""
    return value.data if isinstance(value, Tensor) else value


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
        self.act = K.GateFn(activations.get(self.config.activation))
        ract = getattr(self.config, "recurrent_activation", None)
        self.ract = K.GateFn(activations.get(ract))
        self._states: list[Array] | None = None

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
            WeightSpec(
                "kernel",
                (int(input_shape[-1]), width),
                c.kernel_initializer,
                True,
                c.kernel_regularizer,
                c.kernel_constraint,
            ),
            WeightSpec(
                "recurrent_kernel",
                (c.units, width),
                c.recurrent_initializer,
                True,
                c.recurrent_regularizer,
                c.recurrent_constraint,
            ),
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
        self, xz: Array, w: CellWeights, states: list[Array], mask: Any, rdp: Any
    ) -> K.LoopCache:
        raise NotImplementedError

    def final_states(self, loop: K.LoopCache) -> list[Array]:
        return [loop.hs[-1]]

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any
    ) -> tuple[Array, Array, Array]:
        """(dxz, drz, dh0) in the loop's gate order."""
        raise NotImplementedError

    def recurrent_grad(self, loop: K.LoopCache, drz: Array) -> Array:
        hp = K.recurrent_inputs(loop)
        u = self.config.units
        return hp.reshape(-1, u).T @ drz.reshape(-1, drz.shape[-1])

    def bias_grads(self, dxz: Array, drz: Array) -> Array:
        return dxz.sum(axis=(0, 1))

    def to_layout(self, g: Array) -> Array:
        """A gradient in the loop's gate order -> Keras's layout (identity but for LSTM)."""
        return g

    # ----- forward / backward ------------------------------------------------------------------
    def _dropout(self, ctx: CallContext, rate: float, shape: tuple[int, ...], like: Array) -> Any:
        if not (ctx.training and rate > 0.0):
            return None
        keep = (ctx.rng.random(shape) >= rate) / (1.0 - rate)
        return backend_of(like).asarray(keep, dtype=like.dtype)

    def _time_mask(self, mask: Any, xp: Any) -> Any:
        if mask is None:
            return None
        m = xp.asarray(_raw(mask), dtype=bool).T[:, :, None]
        return m[::-1] if self.config.go_backwards else m

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        with K.single_threaded_blas():
            return self._forward(params, inputs, ctx)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        with K.single_threaded_blas():
            return self._backward(params, cache, grad_output, grads, ctx)

    def _forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        c = self.config
        xp = backend_of(inputs).xp
        n, steps, f = inputs.shape
        dp = self._dropout(ctx, c.dropout, (n, f), inputs)
        rdp = self._dropout(ctx, c.recurrent_dropout, (n, c.units), inputs)
        xt = inputs.transpose(1, 0, 2)
        if c.go_backwards:
            xt = xt[::-1]
        xt = xp.ascontiguousarray(xt if dp is None else xt * dp)
        w = self.cell_weights(params)
        xz = (xt.reshape(steps * n, f) @ w.kernel).reshape(steps, n, -1)
        if w.bias is not None:
            xz += w.bias
        states = self._initial_states(xp, n, inputs.dtype)
        loop = self.run(xz, w, states, self._time_mask(ctx.mask, xp), rdp)
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
        xp = backend_of(grad_output).xp
        xt, w, loop, dp = cache
        steps, n, f = xt.shape
        if c.return_sequences:
            dys, dh_last = xp.ascontiguousarray(grad_output.transpose(1, 0, 2)), None
        else:
            dys, dh_last = None, grad_output
        dxz, drz, _ = self.run_backward(loop, w, dys, dh_last)
        g2 = dxz.reshape(steps * n, -1)
        if grads[0] is not None:
            grads[0][...] = self.to_layout(xt.reshape(steps * n, f).T @ g2)
        if grads[1] is not None:
            grads[1][...] = self.to_layout(self.recurrent_grad(loop, drz))
        if c.use_bias and grads[2] is not None:
            grads[2][...] = self.to_layout(self.bias_grads(dxz, drz))
        if not ctx.need_input_grad:
            return None
        dx = (g2 @ w.kernel.T).reshape(steps, n, f)
        if dp is not None:
            dx *= dp
        if c.go_backwards:
            dx = dx[::-1]
        return xp.ascontiguousarray(dx.transpose(1, 0, 2))


@register
class SimpleRNN(RNNBase):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias); units*(F+units)+units."""

    type_name = "SimpleRNN"
    config_class = SimpleRNNConfig

    def run(
        self, xz: Array, w: CellWeights, states: list[Array], mask: Any, rdp: Any
    ) -> K.LoopCache:
        return K.simple_forward(xz, w.recurrent, states[0], self.act, mask, rdp)

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any
    ) -> tuple[Array, Array, Array]:
        dxz, dh0 = K.simple_backward(loop, w.recurrent, self.act, dys, dh_last)
        return dxz, dxz, dh0


def _lstm_order(units: int) -> np.ndarray:
    """Column order taking Keras's i, f, c, o to the loop's i, f, o, c."""
    u = units
    return np.r_[0 : 2 * u, 3 * u : 4 * u, 2 * u : 3 * u]


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
        self._order = _lstm_order(self.config.units)
        self._inverse = np.argsort(self._order)

    def bias_initializer(self) -> Any:
        c = self.config
        if c.unit_forget_bias:
            return ForgetBiasInitializer(c.bias_initializer, c.units)
        return c.bias_initializer

    def cell_weights(self, params: list[Array]) -> CellWeights:
        order = self._order
        bias = params[2][order] if self.config.use_bias else None
        return CellWeights(params[0][:, order], params[1][:, order], bias)

    def to_layout(self, g: Array) -> Array:
        return g[..., self._inverse]

    def run(
        self, xz: Array, w: CellWeights, states: list[Array], mask: Any, rdp: Any
    ) -> K.LoopCache:
        return K.lstm_forward(xz, w.recurrent, states[0], states[1], self.act, self.ract, mask, rdp)

    def final_states(self, loop: K.LoopCache) -> list[Array]:
        return [loop.hs[-1], loop.extra["cs"][-1]]

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any
    ) -> tuple[Array, Array, Array]:
        dxz, dh0 = K.lstm_backward(loop, w.recurrent, self.act, self.ract, dys, dh_last)
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
        self, xz: Array, w: CellWeights, states: list[Array], mask: Any, rdp: Any
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
        )

    def run_backward(
        self, loop: K.LoopCache, w: CellWeights, dys: Any, dh_last: Any
    ) -> tuple[Array, Array, Array]:
        return K.gru_backward(
            loop, w.recurrent, self.act, self.ract, self.config.reset_after, dys, dh_last
        )

    def recurrent_grad(self, loop: K.LoopCache, drz: Array) -> Array:
        if self.config.reset_after:
            return super().recurrent_grad(loop, drz)
        u = self.config.units
        xp = backend_of(drz).xp
        hp = K.recurrent_inputs(loop).reshape(-1, u)
        rh = loop.extra["rec"].reshape(-1, u)
        d2 = drz.reshape(-1, 3 * u)
        return xp.concatenate([hp.T @ d2[:, : 2 * u], rh.T @ d2[:, 2 * u :]], axis=1)

    def bias_grads(self, dxz: Array, drz: Array) -> Array:
        if self.config.reset_after:
            xp = backend_of(dxz).xp
            return xp.stack([dxz.sum(axis=(0, 1)), drz.sum(axis=(0, 1))])
        return dxz.sum(axis=(0, 1))
