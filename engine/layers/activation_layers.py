"""Keras 3's activation layers: ReLU, LeakyReLU, Softmax, ELU, PReLU.

Each is an `engine.activations` function with its arguments fixed by the layer's config, so a
Keras model written with `layers.ReLU(max_value=6.0)` reads as it does in Keras. PReLU alone
has a weight: `alpha`, one slope per input value (batch excluded) except along `shared_axes`,
which share one; `PReLU()` on (None, 10, 8) has 80 parameters, with `shared_axes=[1]` 8.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator

from engine import activations
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
from engine.layers.core import ElementwiseActivation, grad_or_none
from engine.layers.registry import register
from engine.lazy import backend
from engine.regularizers import RegularizerSpec


def _with_args(name: str, **args: Any) -> activations.Activation:
    """The named activation with these arguments, those at the function's default left out
    (so a default `ReLU()` is the plain relu the planned step can fuse)."""
    return replace(activations.get(name), args={k: v for k, v in args.items() if v is not None})


class ReLUConfig(LayerConfig):
    type: Literal["ReLU"] = "ReLU"
    max_value: float | None = Field(None, ge=0.0)
    negative_slope: float = Field(0.0, ge=0.0)
    threshold: float = Field(0.0, ge=0.0)


@register
class ReLU(ElementwiseActivation):
    """`x` for `threshold < x < max_value`, `max_value` above, `negative_slope * (x -
    threshold)` up to the threshold (0 at it, as in Keras). Example: `ReLU(max_value=6.0)` is
    relu6."""

    type_name = "ReLU"
    config_class = ReLUConfig
    positional = ("max_value", "negative_slope", "threshold")
    config: ReLUConfig

    def make_activation(self) -> activations.Activation:
        c = self.config
        return _with_args(
            "relu",
            max_value=c.max_value,
            negative_slope=c.negative_slope or None,
            threshold=c.threshold or None,
        )


class LeakyReLUConfig(LayerConfig):
    type: Literal["LeakyReLU"] = "LeakyReLU"
    negative_slope: float = Field(0.3, ge=0.0)


@register
class LeakyReLU(ElementwiseActivation):
    """`x` for x >= 0, `negative_slope * x` below. Example: `LeakyReLU(negative_slope=0.2)`."""

    type_name = "LeakyReLU"
    config_class = LeakyReLUConfig
    positional = ("negative_slope",)
    config: LeakyReLUConfig

    def make_activation(self) -> activations.Activation:
        return _with_args("leaky_relu", negative_slope=self.config.negative_slope)


class ELUConfig(LayerConfig):
    type: Literal["ELU"] = "ELU"
    alpha: float = 1.0


@register
class ELU(ElementwiseActivation):
    """`x` for x > 0, `alpha * (exp(x) - 1)` below. Example: `ELU(alpha=0.5)`."""

    type_name = "ELU"
    config_class = ELUConfig
    positional = ("alpha",)
    config: ELUConfig

    def make_activation(self) -> activations.Activation:
        return _with_args("elu", alpha=self.config.alpha)


# Keras's value for a masked logit: exp of it is 0 in float32 and float64
_MASKED_LOGIT = -1e9


class SoftmaxConfig(LayerConfig):
    type: Literal["Softmax"] = "Softmax"
    axis: int | tuple[int, ...] = -1

    @field_validator("axis")
    @classmethod
    def _distinct(cls, value: int | tuple[int, ...]) -> int | tuple[int, ...]:
        if isinstance(value, tuple) and (not value or len(set(value)) != len(value)):
            raise ValueError(f"axis takes distinct axes; got {list(value)}")
        return value


@register
class Softmax(ElementwiseActivation):
    """`exp(x) / sum(exp(x))` along `axis` (an axis or several). A mask (True or > 0.5 keeps a
    value, as Keras's call argument) sets the other logits to -1e9 first; a mask of lower rank
    than the input, such as the (N, T) timestep mask an Embedding passes on, covers every value
    of each step. Example: `Softmax(axis=-1)`."""

    type_name = "Softmax"
    config_class = SoftmaxConfig
    positional = ("axis",)
    config: SoftmaxConfig

    def make_activation(self) -> activations.Activation:
        return _with_args("softmax", axis=self.config.axis)

    def compute_output_shape(self, input_shape: Any) -> Any:
        axis = self.config.axis
        rank = len(input_shape)
        for a in axis if isinstance(axis, tuple) else (axis,):
            # the batch axis only for a lone vector, as in Keras's eager examples
            if not -rank <= a < rank or (a % rank == 0 and rank > 1):
                raise ShapeError(
                    f"Softmax axis {a} is not a feature axis of an input of rank {rank} "
                    f"{tuple(input_shape)}",
                    field="axis",
                    hint=f"use an axis in 1..{rank - 1} or -{rank - 1}..-1",
                )
        return input_shape

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        keep = _keep(inputs, ctx.mask)
        if keep is not None:
            xp = backend.backend_of(inputs).xp
            inputs = xp.where(keep, inputs, _MASKED_LOGIT).astype(inputs.dtype, copy=False)
        y, (x, _) = super().forward(params, inputs, ctx)
        return y, (x, y, keep)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        x, y, keep = cache
        dx = self.activation.grad(x, y, grad_output)
        if keep is not None:
            dx = backend.backend_of(dx).xp.where(keep, dx, 0.0).astype(dx.dtype, copy=False)
        return grad_or_none(ctx, dx)


def _keep(inputs: Array, mask: Any) -> Array | None:
    """The mask as booleans shaped to broadcast against `inputs`, or None."""
    if mask is None:
        return None
    xp = backend.backend_of(inputs).xp
    keep = xp.asarray(getattr(mask, "data", mask))
    if keep.dtype != bool:
        keep = keep > 0.5
    return keep.reshape(keep.shape + (1,) * (inputs.ndim - keep.ndim))


class PReLUConfig(LayerConfig):
    type: Literal["PReLU"] = "PReLU"
    alpha_initializer: InitializerSpec = "zeros"
    alpha_regularizer: RegularizerSpec | None = None
    alpha_constraint: ConstraintSpec | None = None
    shared_axes: tuple[PositiveInt, ...] | None = None

    @field_validator("shared_axes", mode="before")
    @classmethod
    def _one_axis(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value


@register
class PReLU(Layer):
    """`x` for x > 0, `alpha * x` below, with `alpha` learned: shape input_shape[1:], size 1
    along each of `shared_axes` (counted from 1, the batch being 0). Example: `PReLU(
    shared_axes=[1, 2])` after a Conv2D learns one slope per channel."""

    type_name = "PReLU"
    concurrent_inference = True
    supports_masking = True
    config_class = PReLUConfig
    positional = ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes")
    config: PReLUConfig

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        return [configured_weight(self.config, "alpha", self._alpha_shape(input_shape))]

    def _alpha_shape(self, input_shape: Any) -> tuple[int, ...]:
        shared = self.config.shared_axes or ()
        rank = len(input_shape)
        if any(a >= rank for a in shared):
            raise ShapeError(
                f"PReLU shared_axes {list(shared)} name an axis the input {tuple(input_shape)} "
                f"lacks (axes 1..{rank - 1})",
                field="shared_axes",
            )
        shape = [1 if i in shared else d for i, d in enumerate(input_shape) if i > 0]
        if None in shape:
            unknown = [i for i, d in enumerate(input_shape) if i > 0 and d is None]
            raise ShapeError(
                f"PReLU needs a known size for every axis it learns a slope along; input "
                f"{tuple(input_shape)} leaves axes {unknown} unknown",
                field="shared_axes",
                hint=f"share those axes: shared_axes: {sorted({*shared, *unknown})}",
            )
        return tuple(int(d) for d in shape)

    def flops(self, input_shape: Any) -> int:
        return 2 * math.prod(d or 1 for d in input_shape[1:])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        xp = backend.backend_of(inputs).xp
        negative = xp.minimum(inputs, 0)
        return inputs - negative + params[0] * negative, (inputs, negative)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        x, negative = cache
        alpha = params[0]
        if grads[0] is not None:
            axes = (0, *(self.config.shared_axes or ()))
            grads[0][...] = (grad_output * negative).sum(axis=axes, keepdims=True)[0]
        if not ctx.need_input_grad:
            return None
        xp = backend.backend_of(x).xp
        return (grad_output * xp.where(x > 0, 1.0, alpha)).astype(grad_output.dtype, copy=False)
