"""Dense: `y = activation(x @ kernel + bias)` over the last axis.

Shapes: (batch, ..., in) -> (batch, ..., units). Weights, as in Keras: kernel (in, units),
bias (units,). Parameters: in * units + units. Example: `Dense(16)` on 4 features has 80.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import PositiveInt

from engine import activations
from engine.activations import ActivationSpec
from engine.constraints import ConstraintSpec
from engine.initializers import InitializerSpec
from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError, WeightSpec
from engine.layers.registry import register
from engine.regularizers import RegularizerSpec


class DenseConfig(LayerConfig):
    type: Literal["Dense"] = "Dense"
    units: PositiveInt
    activation: ActivationSpec = None
    use_bias: bool = True
    kernel_initializer: InitializerSpec = "glorot_uniform"
    bias_initializer: InitializerSpec = "zeros"
    kernel_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    kernel_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None


@register
class Dense(Layer):
    type_name = "Dense"
    config_class = DenseConfig
    positional = ("units", "activation")
    supports_masking = True
    config: DenseConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activation = activations.get(self.config.activation)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if len(input_shape) < 2:
            raise ShapeError(f"Dense needs an input of rank 2 or more; got {input_shape}")
        if input_shape[-1] is None:
            raise ShapeError(
                "Dense needs a known last dimension; got None",
                hint="give the input a fixed feature size",
            )
        return (*input_shape[:-1], self.config.units)

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        self.compute_output_shape(input_shape)
        specs = [
            WeightSpec(
                "kernel",
                (int(input_shape[-1]), c.units),
                c.kernel_initializer,
                True,
                c.kernel_regularizer,
                c.kernel_constraint,
            )
        ]
        if c.use_bias:
            specs.append(
                WeightSpec(
                    "bias",
                    (c.units,),
                    c.bias_initializer,
                    True,
                    c.bias_regularizer,
                    c.bias_constraint,
                )
            )
        return specs

    def flops(self, input_shape: Any) -> int:
        rows = math.prod(d or 1 for d in input_shape[1:-1])
        units = self.config.units
        return rows * (2 * int(input_shape[-1]) * units + (units if self.config.use_bias else 0))

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        z = inputs @ params[0]
        if self.config.use_bias:
            z += params[1]
        y = self.activation(z)
        return y, (inputs, z, y)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        x, z, y = cache
        dz = self.activation.grad(z, y, grad_output)
        units = self.config.units
        dz2 = dz.reshape(-1, units)
        if grads[0] is not None:
            x2 = x.reshape(-1, x.shape[-1])
            grads[0][...] = x2.T @ dz2
        if self.config.use_bias and grads[1] is not None:
            grads[1][...] = dz2.sum(axis=0)
        if not ctx.need_input_grad:
            return None
        return dz @ params[0].T
