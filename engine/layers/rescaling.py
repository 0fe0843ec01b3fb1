"""Rescaling: the preprocessing layer `y = x * scale + offset`, as in Keras 3.

Any shape in, the same shape out, cast to the layer's float dtype (so integer pixels work).
Example: `Rescaling(1 / 255)` maps uint8 images to [0, 1]. No weights.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from engine.layers.base import Array, CallContext, Layer, LayerConfig
from engine.layers.registry import register


class RescalingConfig(LayerConfig):
    type: Literal["Rescaling"] = "Rescaling"
    scale: float
    offset: float = 0.0


@register
class Rescaling(Layer):
    concurrent_inference = True
    type_name = "Rescaling"
    config_class = RescalingConfig
    positional = ("scale", "offset")
    supports_masking = True
    config: RescalingConfig

    def flops(self, input_shape: Any) -> int:
        return 2 * math.prod(d or 1 for d in input_shape[1:])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        x = inputs.astype(self.dtype, copy=False)
        y = x * x.dtype.type(self.config.scale)
        if self.config.offset:
            y += x.dtype.type(self.config.offset)
        return y, inputs.dtype.kind == "f"

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        if not (cache and ctx.need_input_grad):
            return None
        return grad_output * grad_output.dtype.type(self.config.scale)
