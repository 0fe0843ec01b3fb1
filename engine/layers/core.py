"""Weightless core layers of Keras 3: Activation, Dropout, Flatten, Reshape, Permute, RepeatVector.

Each one moves or scales values without parameters, so its backward is the matching inverse
movement (a reshape, the inverse permutation, a sum over repeats) or the same mask.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator

from engine import activations
from engine.activations import ActivationSpec
from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError
from engine.layers.registry import register
from engine.lazy import backend
from engine.lazy import numpy as np
from engine.rng import kept


def grad_or_none(ctx: CallContext, grad: Any) -> Any:
    return grad if ctx.need_input_grad else None


class ActivationLayerConfig(LayerConfig):
    type: Literal["Activation"] = "Activation"
    activation: ActivationSpec


class ElementwiseActivation(Layer):
    """`y = f(x)` elementwise with an `engine.activations` pair: the base of `Activation` and
    of Keras's activation layers (`engine/layers/activation_layers.py`), which differ only in
    how their config names the function."""

    concurrent_inference = True
    supports_masking = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activation = self.make_activation()

    def make_activation(self) -> activations.Activation:
        raise NotImplementedError

    def flops(self, input_shape: Any) -> int:
        return math.prod(d or 1 for d in input_shape[1:])

    @property
    def is_plain_relu(self) -> bool:
        """Whether this is `maximum(x, 0)`, which the planned step may run inside the layer
        before it (`engine/train/fusion.py`)."""
        return activations.is_plain_relu(self.activation)

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        y = self.activation(inputs)
        return y, (inputs, y)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        x, y = cache
        return grad_or_none(ctx, self.activation.grad(x, y, grad_output))


@register
class Activation(ElementwiseActivation):
    """`y = activation(x)`, any shape. Example: `Activation("relu")`."""

    type_name = "Activation"
    config_class = ActivationLayerConfig
    positional = ("activation",)
    config: ActivationLayerConfig

    def make_activation(self) -> activations.Activation:
        return activations.get(self.config.activation)


class DropoutConfig(LayerConfig):
    type: Literal["Dropout"] = "Dropout"
    rate: float = Field(ge=0.0, lt=1.0)
    noise_shape: tuple[PositiveInt | None, ...] | None = None
    seed: int | None = None


@register
class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability `rate` and scale the rest
    by 1 / (1 - rate), so inference is the identity. `noise_shape` (None = the input's size)
    shares one draw along axes of size 1. Example: `Dropout(0.5)`.

    The draws come from the call's generator (the model's seeded one), or from a generator of
    this layer's own when `seed` is set, as Keras's seeded Dropout does.
    """

    type_name = "Dropout"
    concurrent_inference = True
    config_class = DropoutConfig
    positional = ("rate", "noise_shape", "seed")
    supports_masking = True
    config: DropoutConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        seed = self.config.seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def compute_output_shape(self, input_shape: Any) -> Any:
        ns = self.config.noise_shape
        if ns is not None and len(ns) != len(input_shape):
            raise ShapeError(
                f"noise_shape {list(ns)} needs {len(input_shape)} entries (batch included) for "
                f"an input of shape {tuple(input_shape)}",
                field="noise_shape",
                hint="write null for the axes that take the input's size",
            )
        return input_shape

    def _noise_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        ns = self.config.noise_shape
        if ns is None:
            return shape
        self.compute_output_shape(shape)
        return tuple(n if d is None else int(d) for n, d in zip(shape, ns, strict=True))

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        rate = self.config.rate
        if not ctx.training or rate == 0.0:
            return inputs, None
        rng = self._rng if self._rng is not None else ctx.rng
        xp = backend.backend_of(inputs).xp
        keep = xp.asarray(kept(rng, self._noise_shape(tuple(inputs.shape)), rate, inputs.dtype))
        mask = keep * inputs.dtype.type(1.0 / (1.0 - rate))
        return inputs * mask, mask

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_or_none(ctx, grad_output if cache is None else grad_output * cache)


class FlattenConfig(LayerConfig):
    type: Literal["Flatten"] = "Flatten"
    data_format: Literal["channels_last"] = "channels_last"


class _Movement(Layer):
    """A layer whose forward is a pure reshape/transpose; backward undoes it."""

    concurrent_inference = True

    def _move(self, x: Array) -> Array:
        raise NotImplementedError

    def _unmove(self, dy: Array, x_shape: tuple[int, ...]) -> Array:
        return dy.reshape(x_shape)

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        return self._move(inputs), tuple(inputs.shape)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_or_none(ctx, self._unmove(grad_output, cache))


@register
class Flatten(_Movement):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...). Example: (None, 5, 5, 64) -> (None, 1600)."""

    type_name = "Flatten"
    config_class = FlattenConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def _move(self, x: Array) -> Array:
        return x.reshape(x.shape[0], -1)


class ReshapeConfig(LayerConfig):
    type: Literal["Reshape"] = "Reshape"
    target_shape: tuple[int, ...]

    @field_validator("target_shape")
    @classmethod
    def _one_unknown(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if sum(d == -1 for d in value) > 1 or any(d == 0 or d < -1 for d in value):
            raise ValueError(
                f"target_shape takes positive sizes and at most one -1; got {list(value)}"
            )
        return value


@register
class Reshape(_Movement):
    """(batch, *in) -> (batch, *target_shape), one entry may be -1 (inferred).

    Example: `Reshape((28, 28, 1))` on (None, 784) gives (None, 28, 28, 1).
    """

    type_name = "Reshape"
    config_class = ReshapeConfig
    positional = ("target_shape",)
    config: ReshapeConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        target = self.config.target_shape
        rest = input_shape[1:]
        known = math.prod(d for d in target if d != -1)
        if any(d is None for d in rest):
            return (input_shape[0], *(None if d == -1 else d for d in target))
        total = math.prod(rest)
        fits = total % known == 0 if -1 in target else total == known
        if not fits:
            raise ShapeError(
                f"Reshape cannot turn {tuple(rest)} ({total} values) into "
                f"{tuple(target)} ({known}{' x n' if -1 in target else ''} values)",
                field="target_shape",
                hint=f"choose a target_shape whose sizes multiply to {total}, or use one -1",
            )
        return (input_shape[0], *(total // known if d == -1 else d for d in target))

    def _move(self, x: Array) -> Array:
        return x.reshape(x.shape[0], *self.config.target_shape)


class PermuteConfig(LayerConfig):
    type: Literal["Permute"] = "Permute"
    dims: tuple[int, ...]

    @field_validator("dims")
    @classmethod
    def _is_permutation(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if sorted(value) != list(range(1, len(value) + 1)):
            raise ValueError(
                f"dims must be a permutation of 1..{len(value)} (axis 0 is the batch); "
                f"got {list(value)}"
            )
        return value


@register
class Permute(_Movement):
    """Reorder the non-batch axes; `dims` counts from 1. Example: `Permute((2, 1))` on
    (None, 10, 64) gives (None, 64, 10)."""

    type_name = "Permute"
    config_class = PermuteConfig
    positional = ("dims",)
    config: PermuteConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        dims = self.config.dims
        if len(dims) != len(input_shape) - 1:
            raise ShapeError(
                f"Permute dims {list(dims)} name {len(dims)} axes but the input "
                f"{tuple(input_shape)} has {len(input_shape) - 1} besides the batch",
                field="dims",
            )
        return (input_shape[0], *(input_shape[d] for d in dims))

    def _move(self, x: Array) -> Array:
        return x.transpose(0, *self.config.dims)

    def _unmove(self, dy: Array, x_shape: tuple[int, ...]) -> Array:
        inverse = [0] * (len(self.config.dims) + 1)
        for i, d in enumerate((0, *self.config.dims)):
            inverse[d] = i
        return dy.transpose(*inverse)


class RepeatVectorConfig(LayerConfig):
    type: Literal["RepeatVector"] = "RepeatVector"
    n: PositiveInt


@register
class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features). Example: `RepeatVector(3)` on (None, 32) gives
    (None, 3, 32)."""

    type_name = "RepeatVector"
    concurrent_inference = True
    config_class = RepeatVectorConfig
    positional = ("n",)
    config: RepeatVectorConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        if len(input_shape) != 2:
            raise ShapeError(
                f"RepeatVector needs a rank-2 input (batch, features); got {tuple(input_shape)}",
                hint="add a Flatten before RepeatVector",
            )
        return (input_shape[0], self.config.n, input_shape[1])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        xp = backend.backend_of(inputs).xp
        return xp.repeat(inputs[:, None, :], self.config.n, axis=1), None

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_or_none(ctx, grad_output.sum(axis=1))
