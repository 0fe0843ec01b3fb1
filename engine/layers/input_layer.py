"""Input: the spec entry and layer that declare a model input (Keras shows it as InputLayer).

Shapes: no batch in the config; the output is `(batch_size, *shape)` with `batch_size` None unless
fixed. It has no weights and passes its input through. Example: `{type: Input, shape: [4]}` gives
`(None, 4)` and 0 parameters; `{type: Input, shape: [20], dtype: int32}` takes token ids.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import PositiveInt

from engine.layers.base import Array, CallContext, Layer, LayerConfig, unique_name
from engine.layers.registry import register

InputDType = Literal["float32", "float64", "int32", "int64", "bool", "string"]


class InputConfig(LayerConfig):
    type: Literal["Input"] = "Input"
    shape: tuple[PositiveInt | None, ...]
    dtype: InputDType | None = None  # type: ignore[assignment]
    batch_size: PositiveInt | None = None


@register
class InputLayer(Layer):
    """A model's entry point: it only records the shape and dtype the model expects."""

    type_name = "Input"
    concurrent_inference = True
    display_name = "InputLayer"
    config_class = InputConfig
    positional = ("shape",)
    supports_masking = True
    config: InputConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        config = kwargs.get("config")
        if config is None and not kwargs.get("name"):
            kwargs["name"] = unique_name("input_layer")
        elif config is not None and not config.name:
            kwargs["config"] = config.model_copy(update={"name": unique_name("input_layer")})
        super().__init__(*args, **kwargs)
        self.output_shape = self.batch_shape
        self.input_shape = self.batch_shape
        self.built = True

    @property
    def batch_shape(self) -> tuple[int | None, ...]:
        return (self.config.batch_size, *self.config.shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.batch_shape

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
