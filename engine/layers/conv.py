"""Conv1D, Conv2D and Conv3D: channels-last convolution plus bias and activation, as in Keras 3.

`y = activation(conv(x, kernel) + bias)`. Shapes: (batch, *spatial, in) -> (batch, *out, filters)
with out = ceil((n - (k-1)*d) / s) for `valid` and ceil(n / s) for `same`/`causal`. Weights:
kernel (*kernel_size, in // groups, filters), bias (filters,). Example: `Conv2D(32, 3)` on a
28x28x1 image has 3*3*1*32 + 32 = 320 parameters and outputs (None, 26, 26, 32).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from pydantic import PositiveInt, model_validator

from engine import activations
from engine.activations import Activation, ActivationSpec
from engine.constraints import ConstraintSpec
from engine.conv_geometry import as_tuple, conv_output_length
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
from engine.lazy import backend, conv_kernels, conv_pool_kernels
from engine.regularizers import RegularizerSpec

IntOrTuple = PositiveInt | tuple[PositiveInt, ...]
Forward = Callable[[list[Array], Any, CallContext], tuple[Array, Any]]
AXES = {
    1: "(batch, steps, channels)",
    2: "(batch, height, width, channels)",
    3: "(batch, depth, height, width, channels)",
}


class ConvConfig(LayerConfig):
    """Keras's convolution arguments; `rank` fixes how many values the tuples take."""

    rank: ClassVar[int] = 2
    filters: PositiveInt
    kernel_size: IntOrTuple
    strides: IntOrTuple = 1
    padding: Literal["valid", "same"] = "valid"
    data_format: Literal["channels_last"] = "channels_last"
    dilation_rate: IntOrTuple = 1
    groups: PositiveInt = 1
    activation: ActivationSpec = None
    use_bias: bool = True
    kernel_initializer: InitializerSpec = "glorot_uniform"
    bias_initializer: InitializerSpec = "zeros"
    kernel_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    kernel_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> ConvConfig:
        for name in ("kernel_size", "strides", "dilation_rate"):
            as_tuple(getattr(self, name), self.rank, name)
        if (
            max(as_tuple(self.strides, self.rank, "strides")) > 1
            and max(as_tuple(self.dilation_rate, self.rank, "dilation_rate")) > 1
        ):
            raise ValueError("strides > 1 cannot be combined with dilation_rate > 1")
        if self.filters % self.groups:
            raise ValueError(
                f"filters ({self.filters}) must be divisible by groups ({self.groups})"
            )
        return self

    def tuples(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return geometry(self)


def geometry(config: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """A convolution config's (kernel_size, strides, dilation_rate), each `rank` values."""
    return (
        as_tuple(config.kernel_size, config.rank, "kernel_size"),
        as_tuple(config.strides, config.rank, "strides"),
        as_tuple(config.dilation_rate, config.rank, "dilation_rate"),
    )


class Conv1DConfig(ConvConfig):
    rank: ClassVar[int] = 1
    type: Literal["Conv1D"] = "Conv1D"
    padding: Literal["valid", "same", "causal"] = "valid"  # type: ignore[assignment]


class Conv2DConfig(ConvConfig):
    rank: ClassVar[int] = 2
    type: Literal["Conv2D"] = "Conv2D"


class Conv3DConfig(ConvConfig):
    rank: ClassVar[int] = 3
    type: Literal["Conv3D"] = "Conv3D"


class Conv(Layer):
    """Shared rules of the convolution layers; subclasses only name their config."""

    concurrent_inference = True

    positional = ("filters", "kernel_size", "strides", "padding")
    config: ConvConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activation = activations.get(self.config.activation)

    def compute_output_shape(self, input_shape: Any) -> Any:
        c = self.config
        rank = c.rank
        if len(input_shape) != rank + 2:
            hint = (
                f"add a channels axis: Reshape to {(*input_shape[1:], 1)}"
                if len(input_shape) == rank + 1
                else f"{self.type_name} takes inputs shaped {AXES[rank]}"
            )
            raise ShapeError(
                f"{self.type_name} needs a rank-{rank + 2} input {AXES[rank]}; "
                f"got {tuple(input_shape)}",
                hint=hint,
            )
        channels = input_shape[-1]
        if channels is None:
            raise ShapeError(
                f"{self.type_name} needs a known channels axis; got None",
                hint="give the input a fixed last dimension",
            )
        if channels % c.groups:
            raise ShapeError(
                f"input channels ({channels}) must be divisible by groups ({c.groups})",
                field="groups",
                hint=f"use a groups value that divides {channels}",
            )
        kernel, strides, dilation = c.tuples()
        out = []
        for n, k, s, d in zip(input_shape[1:-1], kernel, strides, dilation, strict=True):
            length = conv_output_length(n, k, s, c.padding, d)
            if length is not None and length <= 0:
                span = "" if d == 1 else f" (dilated to {(k - 1) * d + 1})"
                raise ShapeError(
                    f"kernel_size {k}{span} is larger than the input length {n} "
                    f"with padding {c.padding}",
                    field="kernel_size",
                    hint="use padding: same, a smaller kernel_size, or a larger input",
                )
            out.append(length)
        return (input_shape[0], *out, c.filters)

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        self.compute_output_shape(input_shape)
        kernel = (*c.tuples()[0], int(input_shape[-1]) // c.groups, c.filters)
        specs = [configured_weight(c, "kernel", kernel)]
        if c.use_bias:
            specs.append(configured_weight(c, "bias", (c.filters,)))
        return specs

    def flops(self, input_shape: Any) -> int:
        c = self.config
        out = self.compute_output_shape(input_shape)
        positions = math.prod(d or 1 for d in out[1:-1])
        per_output = 2 * math.prod(c.tuples()[0]) * int(input_shape[-1]) // c.groups
        return positions * c.filters * (per_output + (1 if c.use_bias else 0))

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        c = self.config
        _, strides, dilation = c.tuples()
        bias = params[1] if c.use_bias else None
        epilogue = in_place_activation(self.activation)
        z, kcache = conv_kernels.conv_forward(
            inputs, params[0], bias, strides, c.padding, dilation, c.groups, epilogue
        )
        y = z if epilogue is not None else self.activation(z)
        return y, (kcache, z, y)

    def fuse_pool(self, pool: Layer) -> Forward | None:
        """The forward of this convolution and the max pooling that alone reads it as one call
        (the planned step's fusion, `engine/train/fusion.py`), or None where the pair does not
        qualify: 2-d, one group, no dilation, a plain ReLU; max pooling, `valid`, windows that
        do not overlap. It runs `engine/kernels/conv_pool.py` where the compiled kernels take
        the arrays, else the two layers' own forwards."""
        c = self.config
        _, strides, dilation = c.tuples()
        relu = in_place_activation(self.activation)
        if relu is None:
            return None
        window, pool_strides = pool.config.tuples()
        qualifies = (
            c.rank == 2
            and c.groups == 1
            and dilation == (1, 1)
            and getattr(pool, "mode", None) == "max"
            and pool.config.padding == "valid"
            and all(s >= k for k, s in zip(window, pool_strides, strict=True))
        )
        if not qualifies:
            return None
        pooling = conv_pool_kernels.Pooling(window, pool_strides)

        def forward(params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
            bias = params[1] if c.use_bias else None
            g = conv_kernels.conv_geometry(inputs.shape, params[0].shape, strides, c.padding, 1)
            if conv_pool_kernels.applies(inputs, params[0], bias, g, pooling):
                return conv_pool_kernels.forward(inputs, params[0], bias, g, pooling, relu)
            y, cache = self.forward(params, inputs, ctx)
            pooled, pool_cache = pool.forward([], y, ctx)
            return pooled, PooledCache(cache, pool, pool_cache)

        return forward

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        if isinstance(cache, conv_pool_kernels.FusedCache):
            dx, dw, db = conv_pool_kernels.backward(cache, grad_output, ctx.need_input_grad)
            return self._store(grads, dw, db, dx)
        if isinstance(cache, PooledCache):
            # the pooling's own backward: its input, this layer's output, always needs a gradient
            pool_ctx = replace(ctx, need_input_grad=True)
            grad_output = cache.pool.backward([], cache.pool_cache, grad_output, [], pool_ctx)
            cache = cache.conv
        kcache, z, y = cache

        def pre_activation_grad(shard: slice, dy: Array) -> Array:
            return self.activation.grad(z[shard], y[shard], dy)

        dx, dw, db = conv_kernels.conv_backward(
            kcache, grad_output, ctx.need_input_grad, prologue=pre_activation_grad
        )
        return self._store(grads, dw, db, dx)

    @staticmethod
    def _store(grads: list[Array | None], dw: Array, db: Array | None, dx: Array) -> Array:
        """Write dW and db into the layer's gradient buffers; returns dX."""
        if grads[0] is not None:
            grads[0][...] = dw
        if db is not None and grads[1] is not None:
            grads[1][...] = db
        return dx


@dataclass
class PooledCache:
    """A convolution and its max pooling run as one call by their own passes: the
    convolution's cache (kernel cache, z, y), the pooling layer and its cache."""

    conv: Any
    pool: Layer
    pool_cache: Any


def _relu_in_place(z: Array) -> None:
    backend.backend_of(z).xp.maximum(z, 0, out=z)


# activations whose output can overwrite z, and whose gradient reads as well from y as from z
_IN_PLACE: dict[str, tuple[dict[str, Any], Callable[[Array], None]]] = {
    "relu": ({"negative_slope": 0.0, "max_value": None, "threshold": 0.0}, _relu_in_place),
}


def in_place_activation(activation: Activation) -> Callable[[Array], None] | None:
    """The in-place form of `activation` when it has one at its arguments, else None.

    Plain ReLU qualifies: max(z, 0) written over z saves a full-size array and a pass, and
    its gradient `dy * (x > 0)` is the same whether x is z or y.
    """
    entry = _IN_PLACE.get(activation.name)
    if entry is None:
        return None
    defaults, fn = entry
    same = all(activation.args.get(k, v) == v for k, v in defaults.items())
    return fn if same and set(activation.args) <= set(defaults) else None


@register
class Conv1D(Conv):
    type_name = "Conv1D"
    config_class = Conv1DConfig


@register
class Conv2D(Conv):
    type_name = "Conv2D"
    config_class = Conv2DConfig


@register
class Conv3D(Conv):
    type_name = "Conv3D"
    config_class = Conv3DConfig
