"""Masking: mark timesteps whose features all equal `mask_value` as padding (Keras 3).

(N, T, ..., F) -> same shape: y = x * any(x != mask_value over the last axis), and the output
mask (N, T, ...) is that `any`, for the recurrent layers downstream to skip those steps.
"""

from __future__ import annotations

from typing import Any, Literal

from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError
from engine.layers.registry import register
from engine.lazy import backend, tensor


def _raw(value: Any) -> Any:
    """The backend array of a Tensor (masks and inputs may come either way)."""
    return value.data if isinstance(value, tensor.Tensor) else value


class MaskingConfig(LayerConfig):
    type: Literal["Masking"] = "Masking"
    mask_value: float = 0.0


@register
class Masking(Layer):
    """Zeroes masked timesteps and passes their mask on. No weights."""

    type_name = "Masking"
    concurrent_inference = True
    config_class = MaskingConfig
    positional = ("mask_value",)
    supports_masking = True
    config: MaskingConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        if len(input_shape) < 2:
            raise ShapeError(f"Masking needs an input of rank 2 or more; got {input_shape}")
        return input_shape

    def _keep(self, x: Array) -> Array:
        xp = backend.backend_of(x).xp
        return xp.any(x != self.config.mask_value, axis=-1)

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return self._keep(_raw(inputs))

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        keep = self._keep(inputs)[..., None].astype(inputs.dtype)
        return inputs * keep, keep

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_output * cache if ctx.need_input_grad else None
