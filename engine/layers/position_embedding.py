"""PositionEmbedding: a learned vector per position, under Keras-Hub's name and arguments.

Ours, not core Keras: `keras_hub.layers.PositionEmbedding(sequence_length, initializer)` is the
layer transformer examples use, and a spec written for it reads the same here. It returns the
embeddings of positions 0..T-1 broadcast to the input's shape, to be added to the token
embeddings (`Add`). Shapes: (B, ..., T, F) -> (B, ..., T, F), T <= sequence_length.
Weight: embeddings (sequence_length, F). Example: `PositionEmbedding(128)` on (None, 128, 64)
has 8192 parameters.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import PositiveInt

from engine.initializers import InitializerSpec
from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError, WeightSpec
from engine.layers.registry import register
from engine.lazy import backend


class PositionEmbeddingConfig(LayerConfig):
    type: Literal["PositionEmbedding"] = "PositionEmbedding"
    sequence_length: PositiveInt
    initializer: InitializerSpec = "glorot_uniform"


@register
class PositionEmbedding(Layer):
    """y[..., t, :] = embeddings[t]; the input gives only the shape, so its gradient is zero."""

    type_name = "PositionEmbedding"
    concurrent_inference = True
    config_class = PositionEmbeddingConfig
    positional = ("sequence_length", "initializer")
    config: PositionEmbeddingConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        if len(input_shape) < 3 or input_shape[-1] is None:
            raise ShapeError(
                f"PositionEmbedding needs (batch, ..., sequence, features) with known features; "
                f"got {tuple(input_shape)}",
                hint="put it after an Embedding",
            )
        steps = input_shape[-2]
        if steps is not None and steps > self.config.sequence_length:
            raise ShapeError(
                f"the input has {steps} positions but sequence_length is "
                f"{self.config.sequence_length}",
                field="sequence_length",
                hint=f"set sequence_length to at least {steps}",
            )
        return tuple(input_shape)

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        self.compute_output_shape(input_shape)
        shape = (self.config.sequence_length, int(input_shape[-1]))
        return [WeightSpec("embeddings", shape, self.config.initializer)]

    def flops(self, input_shape: Any) -> int:
        return 0

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        steps = inputs.shape[-2]
        if steps > self.config.sequence_length:
            raise ValueError(
                f"PositionEmbedding {self.name!r} got {steps} positions; sequence_length is "
                f"{self.config.sequence_length}"
            )
        xp = backend.backend_of(params[0]).xp
        y = xp.broadcast_to(params[0][:steps], inputs.shape).astype(params[0].dtype)
        return y, inputs

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        steps, features = grad_output.shape[-2:]
        if grads[0] is not None:
            grads[0][...] = 0
            rows = math.prod(grad_output.shape[:-2])
            grads[0][:steps] = grad_output.reshape(rows, steps, features).sum(axis=0)
        if not ctx.need_input_grad:
            return None
        return backend.backend_of(grad_output).xp.zeros_like(cache)
