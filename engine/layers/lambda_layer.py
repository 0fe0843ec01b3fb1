"""Lambda: a layer whose computation is a safe formula (engine.expression), never Python code.

`{type: Lambda, expression: "x * 2.0 + 1.0"}` or, over several inputs, `"x[0] * sigmoid(x[1])"`.
The output shape is inferred from the formula, or checked against `output_shape` (without the
batch axis, as in Keras). Example: `mean(square(x), axis=-1, keepdims=true)` on (None, 5, 3)
gives (None, 5, 1). No weights.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from engine.expression import Expr, ExpressionError, parse
from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError
from engine.layers.registry import register


class LambdaConfig(LayerConfig):
    type: Literal["Lambda"] = "Lambda"
    expression: str
    output_shape: tuple[int | None, ...] | None = None

    @field_validator("expression")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse(value)
        except ExpressionError as exc:
            raise ValueError(f"expression {value!r}: {exc}") from None
        return value


@register
class Lambda(Layer):
    type_name = "Lambda"
    config_class = LambdaConfig
    positional = ("expression", "output_shape")
    config: LambdaConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expr: Expr = parse(self.config.expression)
        # the contract declares multi_input per class; a Lambda decides it per formula:
        # x[0], x[1], ... takes a list of inputs, a bare x one tensor
        setattr(self, "multi_input", self.expr.indexed)  # noqa: B010

    def compute_output_shape(self, input_shape: Any) -> Any:
        several = bool(input_shape) and all(isinstance(s, (list, tuple)) for s in input_shape)
        shapes = list(input_shape) if self.multi_input else [input_shape]
        if self.multi_input and not several:
            raise ShapeError(
                f"expression {self.config.expression!r} uses x[i], so it takes a list of inputs",
                field="inputs",
                hint="list the inputs: inputs: [a, b], or write x for one input",
            )
        try:
            inferred = self.expr.output_shape(shapes)
        except ExpressionError as exc:
            raise ShapeError(
                f"expression {self.config.expression!r}: {exc}", field="expression"
            ) from None
        given = self.config.output_shape
        if given is None:
            return inferred
        declared = (None, *given)
        if len(declared) != len(inferred) or any(
            a is not None and b is not None and a != b
            for a, b in zip(declared, inferred, strict=False)
        ):
            raise ShapeError(
                f"output_shape {tuple(given)} does not match the formula's {inferred[1:]}",
                field="output_shape",
                hint="drop output_shape to use the inferred one",
            )
        return tuple(a if a is not None else b for a, b in zip(declared, inferred, strict=True))

    def forward(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Array, Any]:
        arrays = list(inputs) if self.multi_input else [inputs]
        arrays = [a.astype(self.dtype, copy=False) for a in arrays]
        y, values = self.expr.forward(arrays)
        return y, values

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        n = self.expr.n_inputs
        gin = self.expr.backward(cache, grad_output) if ctx.need_input_grad else [None] * n
        return gin if self.multi_input else gin[0]
