"""Regularization layers that act only in training, besides Dropout: GaussianNoise,
SpatialDropout1D/2D, and Keras's pass-through Identity.

- GaussianNoise(stddev): in training `y = x + N(0, stddev^2)` per value; otherwise `y = x`.
- SpatialDropout1D/2D(rate): Dropout with one draw per sample and channel, shared along the
  time or both spatial axes (Keras's noise_shape (B, 1, C) / (B, 1, 1, C)).
- Identity: `y = x`.
Shapes are kept; no weights; masks pass through. Example: `SpatialDropout1D(0.2)` on
(None, 50, 64) zeroes whole feature maps of 64 channels.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeFloat

from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError
from engine.layers.core import Dropout
from engine.layers.registry import register
from engine.lazy import backend
from engine.lazy import numpy as np


class GaussianNoiseConfig(LayerConfig):
    type: Literal["GaussianNoise"] = "GaussianNoise"
    stddev: NonNegativeFloat
    seed: int | None = None


@register
class GaussianNoise(Layer):
    type_name = "GaussianNoise"
    concurrent_inference = True
    config_class = GaussianNoiseConfig
    positional = ("stddev", "seed")
    supports_masking = True
    config: GaussianNoiseConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        seed = self.config.seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        if not ctx.training or self.config.stddev == 0.0:
            return inputs, None
        rng = self._rng if self._rng is not None else ctx.rng
        noise = rng.normal(0.0, self.config.stddev, inputs.shape).astype(inputs.dtype)
        return inputs + backend.backend_of(inputs).xp.asarray(noise), None

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_output if ctx.need_input_grad else None


class SpatialDropoutConfig(LayerConfig):
    rate: float = Field(ge=0.0, lt=1.0)
    seed: int | None = None


class SpatialDropout(Dropout):
    """Dropout whose draw is shared along the spatial axes (see the module docstring)."""

    rank: ClassVar[int] = 1
    # Dropout also takes noise_shape; Keras's SpatialDropout does not
    positional = ("rate", "seed")  # type: ignore[assignment]

    def compute_output_shape(self, input_shape: Any) -> Any:
        if len(input_shape) != self.rank + 2:
            raise ShapeError(
                f"{self.type_name} needs a rank-{self.rank + 2} input (batch, {self.rank} "
                f"spatial axes, channels); got {tuple(input_shape)}"
            )
        return input_shape

    def _noise_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        self.compute_output_shape(shape)
        return (shape[0], *([1] * self.rank), shape[-1])


def _register_spatial(name: str, rank: int) -> type[SpatialDropout]:
    annotations = {"type": Literal[name]}
    config = type(
        f"{name}Config", (SpatialDropoutConfig,), {"__annotations__": annotations, "type": name}
    )
    attrs = {"type_name": name, "config_class": config, "rank": rank, "__doc__": f"{name}."}
    return register(type(name, (SpatialDropout,), attrs))


SpatialDropout1D = _register_spatial("SpatialDropout1D", 1)
SpatialDropout2D = _register_spatial("SpatialDropout2D", 2)


class IdentityConfig(LayerConfig):
    type: Literal["Identity"] = "Identity"


@register
class Identity(Layer):
    type_name = "Identity"
    concurrent_inference = True
    config_class = IdentityConfig
    supports_masking = True

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        return inputs, None

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_output if ctx.need_input_grad else None
