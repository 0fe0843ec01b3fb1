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
from engine.layers.base import (
    Array,
    CallContext,
    Layer,
    LayerConfig,
    ShapeError,
    WeightSpec,
    configured_weight,
)
from engine.layers.registry import register
from engine.lazy import backend, gemm, native, workspace
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
    concurrent_inference = True
    takes_logits_gradient = True
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
        specs = [configured_weight(c, "kernel", (int(input_shape[-1]), c.units))]
        if c.use_bias:
            specs.append(configured_weight(c, "bias", (c.units,)))
        return specs

    def flops(self, input_shape: Any) -> int:
        rows = math.prod(d or 1 for d in input_shape[1:-1])
        units = self.config.units
        return rows * (2 * int(input_shape[-1]) * units + (units if self.config.use_bias else 0))

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        if isinstance(ctx, workspace.PlannedContext):
            return self._planned_forward(params, inputs, ctx)
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
        if isinstance(ctx, workspace.PlannedContext):
            return self._planned_backward(params, cache, grad_output, grads, ctx)
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

    # ----- the planned step: buffers reused every step, no fresh arrays -------------------
    @property
    def _inplace_kind(self) -> str | None:
        """`relu` or `linear` when the activation can run in place on the product buffer."""
        act = self.activation
        return act.name if act.name in ("relu", "linear") and not act.args else None

    def _planned_forward(
        self, params: list[Array], inputs: Array, ctx: workspace.PlannedContext
    ) -> tuple[Array, Any]:
        """The forward pass into the call's buffers; bias and relu run on each block of rows as
        soon as its product is done (relu in place: its mask is y > 0)."""
        kernel = params[0]
        xp = backend.backend_of(kernel).xp
        x2 = inputs.reshape(-1, inputs.shape[-1])
        dtype = kernel.dtype if x2.dtype == kernel.dtype else xp.result_type(x2.dtype, kernel.dtype)
        z = ctx.buffer(xp, "z", (x2.shape[0], self.config.units), dtype)
        kind = self._inplace_kind
        bias = params[1] if self.config.use_bias else None
        epilogue = None
        if bias is not None or kind == "relu":
            epilogue = gemm.BiasRelu(bias, kind == "relu")
        gemm.matmul(x2, kernel, z, epilogue)
        # other activations see the output's own shape: an `axis` argument refers to it
        z = z.reshape((*inputs.shape[:-1], self.config.units))
        y = z if kind is not None else self.activation(z)
        return y, (inputs, z if kind is None else None, y)

    def _planned_backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: workspace.PlannedContext,
    ) -> Array | None:
        x, z, y = cache
        kernel = params[0]
        xp = backend.backend_of(kernel).xp
        units = self.config.units
        dy = grad_output.reshape(-1, units)
        kind = self._inplace_kind
        dbias = grads[1] if self.config.use_bias else None
        if ctx.preactivation_grad or kind == "linear":
            dz = dy
        elif kind == "relu":
            y2 = y.reshape(-1, units)
            dz = ctx.buffer(xp, "dz", y2.shape, dy.dtype)
            if dbias is not None and native.relu_grad_sum(y2, dy, dz, dbias):
                dbias = None
            elif native.relu_grad(y2, dy, dz) is None:
                mask = ctx.buffer(xp, "mask", y2.shape, bool)
                xp.greater(y2, 0, out=mask)
                xp.multiply(dy, mask, out=dz)
        else:
            dz = self.activation.grad(z, y, grad_output).reshape(-1, units)
        x2 = x.reshape(-1, x.shape[-1])
        if dbias is not None:
            dz.sum(axis=0, out=dbias)
        products = [] if grads[0] is None else [(x2.T, dz, grads[0])]
        dx = None
        if ctx.need_input_grad:
            dx = ctx.buffer(xp, "dx", x2.shape, dz.dtype)
            products.append((dz, kernel.T, dx))
        gemm.matmuls(products)
        return None if dx is None else dx.reshape(x.shape)
