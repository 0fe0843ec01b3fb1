"""Embedding: integer ids -> rows of a learned table, as Keras 3's `Embedding`.

Shapes: (N, ...) integers in [0, input_dim) -> (N, ..., output_dim). Weight: embeddings
(input_dim, output_dim). Example: `Embedding(10000, 64)` has 640000 parameters. With
`mask_zero` the id 0 is padding and the output mask is `ids != 0`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import PositiveInt

from engine.constraints import ConstraintSpec
from engine.initializers import InitializerSpec
from engine.layers.base import Array, CallContext, Layer, LayerConfig, WeightSpec, configured_weight
from engine.layers.registry import register
from engine.lazy import backend, device_checks, tensor
from engine.regularizers import RegularizerSpec


def _raw(value: Any) -> Any:
    """The backend array of a Tensor (masks and inputs may come either way)."""
    return value.data if isinstance(value, tensor.Tensor) else value


class EmbeddingConfig(LayerConfig):
    type: Literal["Embedding"] = "Embedding"
    input_dim: PositiveInt
    output_dim: PositiveInt
    # Keras 3's default "uniform" is RandomUniform(-0.05, 0.05)
    embeddings_initializer: InitializerSpec = "random_uniform"
    embeddings_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    embeddings_constraint: ConstraintSpec | None = None
    mask_zero: bool = False


@register
class Embedding(Layer):
    """y[..., :] = embeddings[ids[...]]; the ids get no gradient."""

    type_name = "Embedding"
    concurrent_inference = True
    config_class = EmbeddingConfig
    positional = ("input_dim", "output_dim")
    config: EmbeddingConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape, self.config.output_dim)

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        return [configured_weight(c, "embeddings", (c.input_dim, c.output_dim))]

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        if not self.config.mask_zero:
            return None
        return _raw(inputs) != 0

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        xp = backend.backend_of(params[0]).xp
        ids = xp.asarray(inputs)
        if ids.dtype.kind == "f":
            ids = ids.astype(xp.int64)
        if ids.size:
            ids = self._checked(xp, ids)
        return xp.take(params[0], ids, axis=0), ids

    def _checked(self, xp: Any, ids: Array) -> Array:
        """The ids, checked to lie in [0, input_dim); on a device the check is deferred
        (engine.device_checks) and the ids clipped meanwhile, so the step needs no sync."""
        size = self.config.input_dim

        def message(lo: Array, hi: Array) -> str:
            bad = int(lo) if int(lo) < 0 else int(hi)
            return f"Embedding {self.name!r} got id {bad}; ids must be in [0, input_dim={size})"

        return device_checks.in_range(xp, ids, size, message)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> None:
        if grads[0] is not None:
            ids = cache.reshape(-1)
            rows = grad_output.reshape(ids.size, grads[0].shape[-1])  # (0, -1) fails when empty
            backend.backend_of(grads[0]).sum_rows(ids, rows, grads[0])
        return None
