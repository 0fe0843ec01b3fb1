"""DepthwiseConv2D, SeparableConv2D and Conv2DTranspose, channels last, as in Keras 3.

- DepthwiseConv2D: each input channel convolved with its own `depth_multiplier` filters; a
  grouped convolution with one group per channel. Kernel (kh, kw, C, depth_multiplier), bias
  (C * depth_multiplier,). Output (B, *out, C * depth_multiplier), out as for Conv2D.
- SeparableConv2D: that depthwise step without bias, then a 1x1 convolution to `filters` with
  bias. Weights depthwise_kernel (kh, kw, C, dm), pointwise_kernel (1, 1, C * dm, filters),
  bias (filters,).
- Conv2DTranspose: the transposed convolution (the input gradient of a Conv2D), kernel
  (kh, kw, filters, C), bias (filters,); out = n * s for `same`, (n - 1) * s + max(k', s) for
  `valid` (k' the dilated kernel), Keras's lengths without output_padding.
Example: `Conv2DTranspose(16, 3, strides=2, padding="same")` on (None, 7, 7, 32) gives
(None, 14, 14, 16) with 3*3*16*32 + 16 = 4624 parameters.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import PositiveInt, model_validator

from engine import activations
from engine.activations import ActivationSpec
from engine.constraints import ConstraintSpec
from engine.conv_geometry import conv_output_length
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
from engine.layers.conv import AXES, IntOrTuple, geometry, in_place_activation
from engine.layers.registry import register
from engine.lazy import conv_kernels
from engine.regularizers import RegularizerSpec


class _GeometryConfig(LayerConfig):
    rank: ClassVar[int] = 2
    kernel_size: IntOrTuple
    strides: IntOrTuple = 1
    padding: Literal["valid", "same"] = "valid"
    data_format: Literal["channels_last"] = "channels_last"
    dilation_rate: IntOrTuple = 1
    activation: ActivationSpec = None
    use_bias: bool = True
    bias_initializer: InitializerSpec = "zeros"
    bias_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    bias_constraint: ConstraintSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> _GeometryConfig:
        kernel, strides, dilation = self.tuples()
        if max(strides) > 1 and max(dilation) > 1:
            raise ValueError("strides > 1 cannot be combined with dilation_rate > 1")
        return self

    def tuples(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return geometry(self)


class _DepthwiseFields(_GeometryConfig):
    depth_multiplier: PositiveInt = 1
    depthwise_initializer: InitializerSpec = "glorot_uniform"
    depthwise_regularizer: RegularizerSpec | None = None
    depthwise_constraint: ConstraintSpec | None = None


class DepthwiseConv2DConfig(_DepthwiseFields):
    type: Literal["DepthwiseConv2D"] = "DepthwiseConv2D"


class SeparableConv2DConfig(_DepthwiseFields):
    type: Literal["SeparableConv2D"] = "SeparableConv2D"
    filters: PositiveInt
    pointwise_initializer: InitializerSpec = "glorot_uniform"
    pointwise_regularizer: RegularizerSpec | None = None
    pointwise_constraint: ConstraintSpec | None = None


class Conv2DTransposeConfig(_GeometryConfig):
    type: Literal["Conv2DTranspose"] = "Conv2DTranspose"
    filters: PositiveInt
    output_padding: None = None
    kernel_initializer: InitializerSpec = "glorot_uniform"
    kernel_regularizer: RegularizerSpec | None = None
    kernel_constraint: ConstraintSpec | None = None


class _Conv2DFamily(Layer):
    """Shape checks, the activation and its gradient; subclasses do the convolutions."""

    concurrent_inference = True
    config: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activation = activations.get(self.config.activation)

    def _channels(self, input_shape: Any) -> int:
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ShapeError(
                f"{self.type_name} needs a rank-4 input {AXES[2]} with known channels; got "
                f"{tuple(input_shape)}"
            )
        return int(input_shape[-1])

    def _activate(self, z: Array) -> tuple[Array, Any]:
        epilogue = in_place_activation(self.activation)
        if epilogue is not None:
            epilogue(z)
            return z, (z, z)
        y = self.activation(z)
        return y, (z, y)

    def _pre_activation(self, act: Any, grad_output: Array) -> Array:
        z, y = act
        return self.activation.grad(z, y, grad_output)


def _conv_lengths(config: _GeometryConfig, input_shape: Any) -> list[int | None]:
    out = []
    for n, k, s, d in zip(input_shape[1:-1], *config.tuples(), strict=True):
        length = conv_output_length(n, k, s, config.padding, d)
        if length is not None and length <= 0:
            raise ShapeError(
                f"kernel_size {k} is larger than the input length {n}",
                field="kernel_size",
                hint="use padding: same or a smaller kernel_size",
            )
        out.append(length)
    return out


# ----- DepthwiseConv2D and SeparableConv2D -----------------------------------------------------
class _Depthwise(_Conv2DFamily):
    kernel_name: ClassVar[str] = "kernel"

    def _depthwise_spec(self, channels: int) -> WeightSpec:
        c = self.config
        shape = (*c.tuples()[0], channels, c.depth_multiplier)
        return configured_weight(c, self.kernel_name, shape, prefix="depthwise")

    def _depthwise(self, x: Array, kernel: Array, bias: Array | None) -> tuple[Array, Any]:
        c = self.config
        _, strides, dilation = c.tuples()
        kh, kw, channels, dm = kernel.shape
        grouped = kernel.reshape(kh, kw, 1, channels * dm)
        return conv_kernels.conv_forward(x, grouped, bias, strides, c.padding, dilation, channels)

    @staticmethod
    def _depthwise_grad(kcache: Any, g: Array, kernel: Array, need_dx: bool) -> tuple[Any, ...]:
        dx, dw, db = conv_kernels.conv_backward(kcache, g, need_dx)
        return dx, dw.reshape(kernel.shape), db


@register
class DepthwiseConv2D(_Depthwise):
    type_name = "DepthwiseConv2D"
    config_class = DepthwiseConv2DConfig
    positional = ("kernel_size", "strides", "padding", "depth_multiplier")
    config: DepthwiseConv2DConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        channels = self._channels(input_shape)
        out = _conv_lengths(self.config, input_shape)
        return (input_shape[0], *out, channels * self.config.depth_multiplier)

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        self.compute_output_shape(input_shape)
        channels = self._channels(input_shape)
        specs = [self._depthwise_spec(channels)]
        if self.config.use_bias:
            width = channels * self.config.depth_multiplier
            specs.append(configured_weight(self.config, "bias", (width,)))
        return specs

    def flops(self, input_shape: Any) -> int:
        out = self.compute_output_shape(input_shape)
        return 2 * math.prod(d or 1 for d in out[1:]) * math.prod(self.config.tuples()[0])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        bias = params[1] if self.config.use_bias else None
        z, kcache = self._depthwise(inputs, params[0], bias)
        y, act = self._activate(z)
        return y, (kcache, act)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        kcache, act = cache
        g = self._pre_activation(act, grad_output)
        dx, dw, db = self._depthwise_grad(kcache, g, params[0], ctx.need_input_grad)
        if grads[0] is not None:
            grads[0][...] = dw
        if self.config.use_bias and grads[1] is not None:
            grads[1][...] = db
        return dx


@register
class SeparableConv2D(_Depthwise):
    type_name = "SeparableConv2D"
    config_class = SeparableConv2DConfig
    positional = ("filters", "kernel_size", "strides", "padding")
    kernel_name = "depthwise_kernel"
    config: SeparableConv2DConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        self._channels(input_shape)
        return (input_shape[0], *_conv_lengths(self.config, input_shape), self.config.filters)

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        self.compute_output_shape(input_shape)
        channels = self._channels(input_shape)
        pointwise = (1, 1, channels * c.depth_multiplier, c.filters)
        specs = [
            self._depthwise_spec(channels),
            configured_weight(c, "pointwise_kernel", pointwise, prefix="pointwise"),
        ]
        if c.use_bias:
            specs.append(configured_weight(c, "bias", (c.filters,)))
        return specs

    def flops(self, input_shape: Any) -> int:
        c = self.config
        out = self.compute_output_shape(input_shape)
        positions = math.prod(d or 1 for d in out[1:-1])
        middle = int(input_shape[-1]) * c.depth_multiplier
        return 2 * positions * middle * (math.prod(c.tuples()[0]) + c.filters)

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        bias = params[2] if self.config.use_bias else None
        middle, dcache = self._depthwise(inputs, params[0], None)
        z, pcache = conv_kernels.conv_forward(middle, params[1], bias)
        y, act = self._activate(z)
        return y, (dcache, pcache, act)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        dcache, pcache, act = cache
        g = self._pre_activation(act, grad_output)
        dmiddle, dpoint, db = conv_kernels.conv_backward(pcache, g, True)
        dx, ddepth, _ = self._depthwise_grad(dcache, dmiddle, params[0], ctx.need_input_grad)
        for i, value in enumerate((ddepth, dpoint, db)):
            if i < len(grads) and grads[i] is not None:
                grads[i][...] = value  # type: ignore[index]
        return dx


# ----- Conv2DTranspose -------------------------------------------------------------------------
def transpose_length(n: int | None, k: int, s: int, padding: str, d: int) -> int | None:
    """Keras's transposed-convolution output length (output_padding None)."""
    if n is None:
        return None
    span = (k - 1) * d + 1
    if padding == "same":
        return n * s
    return (n - 1) * s + max(span, s)


@register
class Conv2DTranspose(_Conv2DFamily):
    type_name = "Conv2DTranspose"
    config_class = Conv2DTransposeConfig
    positional = ("filters", "kernel_size", "strides", "padding")
    config: Conv2DTransposeConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        self._channels(input_shape)
        c = self.config
        out = [
            transpose_length(n, k, s, c.padding, d)
            for n, k, s, d in zip(input_shape[1:-1], *c.tuples(), strict=True)
        ]
        return (input_shape[0], *out, c.filters)

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        channels = self._channels(input_shape)
        specs = [configured_weight(c, "kernel", (*c.tuples()[0], c.filters, channels))]
        if c.use_bias:
            specs.append(configured_weight(c, "bias", (c.filters,)))
        return specs

    def flops(self, input_shape: Any) -> int:
        c = self.config
        positions = math.prod(d or 1 for d in input_shape[1:-1])
        return 2 * positions * int(input_shape[-1]) * c.filters * math.prod(c.tuples()[0])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        c = self.config
        _, strides, dilation = c.tuples()
        out = self.compute_output_shape((None, *inputs.shape[1:]))
        shape = (inputs.shape[0], *out[1:])
        z = conv_kernels.conv_input_grad(inputs, params[0], shape, strides, c.padding, dilation)
        z = z.copy() if not z.flags.c_contiguous else z
        if c.use_bias:
            z += params[1]
        y, act = self._activate(z)
        return y, (inputs, act)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        c = self.config
        x, act = cache
        g = self._pre_activation(act, grad_output)
        _, strides, dilation = c.tuples()
        # the transposed convolution's adjoint is the convolution itself
        dx, kcache = conv_kernels.conv_forward(g, params[0], None, strides, c.padding, dilation)
        if grads[0] is not None:
            grads[0][...] = conv_kernels.conv_backward(kcache, x, False)[1]
        if c.use_bias and grads[1] is not None:
            grads[1][...] = g.reshape(-1, c.filters).sum(axis=0)
        return dx if ctx.need_input_grad else None
