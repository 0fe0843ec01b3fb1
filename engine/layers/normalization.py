"""BatchNormalization and LayerNormalization with Keras 3's arguments, defaults and weights.

Both compute xhat = (x - mean) / sqrt(var + epsilon) (variance biased) and y = gamma * xhat +
beta. BatchNormalization takes the statistics over every axis but `axis` (the batch included)
in training and from its moving averages in inference; LayerNormalization takes them per
sample over `axis`.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import Field

from engine import activations
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
from engine.lazy import backend, batch_norm, layer_norm
from engine.regularizers import RegularizerSpec

_RELU = activations.get("relu")


def _axes(axis: int | list[int], rank: int, type_name: str) -> tuple[int, ...]:
    """The normalized axes as positive indices; the batch axis is not allowed."""
    listed = [axis] if isinstance(axis, int) else list(axis)
    out = []
    for a in listed:
        pos = a + rank if a < 0 else a
        if not 0 < pos < rank:
            raise ShapeError(
                f"{type_name} axis {a} is out of range for an input of rank {rank}",
                field="axis",
                hint="use -1 (the channels) or another non-batch axis",
            )
        out.append(pos)
    return tuple(sorted(set(out)))


def _param_shape(input_shape: Any, axes: tuple[int, ...], type_name: str) -> tuple[int, ...]:
    dims = [input_shape[a] for a in axes]
    if any(d is None for d in dims):
        raise ShapeError(
            f"{type_name} needs known sizes on its axes; got {input_shape}", field="axis"
        )
    return tuple(int(d) for d in dims)


def _broadcast(p: Array, rank: int, axes: tuple[int, ...]) -> Array:
    """A weight of shape (sizes of `axes`) reshaped to broadcast against the input."""
    shape = [1] * rank
    for a, d in zip(axes, p.shape, strict=True):
        shape[a] = d
    return p.reshape(shape)


class _NormConfig(LayerConfig):
    epsilon: float = Field(1e-3, gt=0)
    center: bool = True
    scale: bool = True
    beta_initializer: InitializerSpec = "zeros"
    gamma_initializer: InitializerSpec = "ones"
    beta_regularizer: RegularizerSpec | None = None
    gamma_regularizer: RegularizerSpec | None = None
    beta_constraint: ConstraintSpec | None = None
    gamma_constraint: ConstraintSpec | None = None


def _affine_specs(c: _NormConfig, shape: tuple[int, ...]) -> list[WeightSpec]:
    """gamma then beta, as Keras orders them."""
    specs = []
    if c.scale:
        specs.append(configured_weight(c, "gamma", shape))
    if c.center:
        specs.append(configured_weight(c, "beta", shape))
    return specs


class _Normalizer(Layer):
    """Shared affine part: which of gamma/beta exist and their gradients."""

    concurrent_inference = True

    supports_masking = True
    config: Any

    def axes_for(self, rank: int) -> tuple[int, ...]:
        return _axes(self.config.axis, rank, self.type_name)

    def compute_output_shape(self, input_shape: Any) -> Any:
        _param_shape(input_shape, self.axes_for(len(input_shape)), self.type_name)
        return input_shape

    def flops(self, input_shape: Any) -> int:
        size = 1
        for d in input_shape[1:]:
            size *= d or 1
        return 8 * size

    def _affine(self, params: list[Array], rank: int, axes: tuple[int, ...]) -> tuple[Any, Any]:
        c = self.config
        gamma = _broadcast(params[0], rank, axes) if c.scale else None
        beta = _broadcast(params[int(c.scale)], rank, axes) if c.center else None
        return gamma, beta

    def _apply(self, xhat: Array, gamma: Any, beta: Any) -> Array:
        y = xhat * gamma if gamma is not None else xhat.copy()
        if beta is not None:
            y += beta
        return y

    def _affine_grads(
        self, g: Array, xhat: Array, reduce: tuple[int, ...], grads: list[Array | None]
    ) -> None:
        c = self.config
        if c.scale and grads[0] is not None:
            grads[0][...] = (g * xhat).sum(axis=reduce).reshape(grads[0].shape)
        if c.center and grads[int(c.scale)] is not None:
            target = grads[int(c.scale)]
            assert target is not None
            target[...] = g.sum(axis=reduce).reshape(target.shape)


# ----- BatchNormalization -------------------------------------------------------------------
class BatchNormalizationConfig(_NormConfig):
    type: Literal["BatchNormalization"] = "BatchNormalization"
    axis: int = -1
    momentum: float = Field(0.99, ge=0.0, le=1.0)
    moving_mean_initializer: InitializerSpec = "zeros"
    moving_variance_initializer: InitializerSpec = "ones"


@register
class BatchNormalization(_Normalizer):
    """Normalizes each channel over the batch. (N, ..., C) -> same shape.

    Weights: gamma, beta (trainable), moving_mean, moving_variance (non-trainable), C each:
    `BatchNormalization()` on 64 channels has 256 parameters, 128 trainable. In training the
    moving statistics are updated in place: moving = moving * momentum + batch * (1 -
    momentum). A frozen layer (`trainable: false`) always runs in inference mode, as in Keras.
    Data-parallel, each rank normalizes with its own shard's statistics and the moving
    statistics are averaged over ranks after every step (`replica_averaged`).
    """

    replica_averaged = ("moving_mean", "moving_variance")

    type_name = "BatchNormalization"
    config_class = BatchNormalizationConfig
    config: BatchNormalizationConfig

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        shape = _param_shape(input_shape, self.axes_for(len(input_shape)), self.type_name)
        return [
            *_affine_specs(c, shape),
            WeightSpec("moving_mean", shape, c.moving_mean_initializer, False),
            WeightSpec("moving_variance", shape, c.moving_variance_initializer, False),
        ]

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        return self._forward(params, inputs, ctx, relu=False)

    def forward_relu(
        self, params: list[Array], inputs: Array, ctx: CallContext
    ) -> tuple[Array, Any]:
        """`relu(forward(x))` in the same passes: the planned step's fusion of this layer with
        a plain ReLU after it (`engine/train/fusion.py`); `backward` then takes the gradient
        of the ReLU's output."""
        return self._forward(params, inputs, ctx, relu=True)

    def _forward(
        self, params: list[Array], inputs: Array, ctx: CallContext, relu: bool
    ) -> tuple[Array, _BatchNormCache]:
        rank = inputs.ndim
        axes = self.axes_for(rank)
        reduce = tuple(a for a in range(rank) if a not in axes)
        gamma, beta = self._affine(params, rank, axes)
        training = ctx.training and self.trainable
        compiled = self._fusable(reduce, rank)
        done = self._compiled_forward(params, inputs, training, relu) if compiled else None
        if done is None:
            affine = (gamma, beta)
            y, xhat, inv = self._composite_forward(params, inputs, training, axes, reduce, affine)
            y = _RELU(y) if relu else y
            mean = None
        else:
            (y, mean, inv), xhat = done, None
        relu_out = y if relu else None
        return y, _BatchNormCache(inputs, mean, xhat, inv, gamma, reduce, training, relu_out)

    def _compiled_forward(
        self, params: list[Array], inputs: Array, training: bool, relu: bool
    ) -> tuple[Array, Array, Array] | None:
        """(y, mean, inv) from the compiled passes, or None where they do not apply; backward
        computes xhat = (x - mean) * inv again."""
        eps = self.config.epsilon
        if not training:
            stats = (params[0], params[1], params[-2], params[-1])
            done = batch_norm.infer_forward(inputs, stats, eps, relu)
            return None if done is None else (done[0], params[-2].copy(), done[1])
        fused = batch_norm.train_forward(inputs, params[0], params[1], eps, relu)
        if fused is None:
            return None
        y, inv, mean, var = fused
        self._update_moving(params[-2], params[-1], mean, var)
        return y, mean, inv

    def _composite_forward(
        self,
        params: list[Array],
        inputs: Array,
        training: bool,
        axes: tuple[int, ...],
        reduce: tuple[int, ...],
        affine: tuple[Any, Any],
    ) -> tuple[Array, Array, Array]:
        """(y, xhat, inv) as NumPy operations: the definition the compiled passes reproduce;
        `reduce` the axes not in `axes`, affine = (gamma, beta) shaped to broadcast."""
        xp = backend.backend_of(inputs).xp
        rank = inputs.ndim
        moving_mean, moving_var = params[-2], params[-1]
        if training:
            mean = inputs.mean(axis=reduce, keepdims=True)
            centered = inputs - mean
            var = (centered * centered).mean(axis=reduce, keepdims=True)
            self._update_moving(moving_mean, moving_var, mean, var)
        else:
            centered = inputs - _broadcast(moving_mean, rank, axes)
            var = _broadcast(moving_var, rank, axes)
        inv = 1.0 / xp.sqrt(var + self.config.epsilon)
        xhat = centered * inv
        return self._apply(xhat, *affine), xhat, inv

    def _fusable(self, reduce: tuple[int, ...], rank: int) -> bool:
        """Whether the compiled passes can run: channels last, with gamma and beta."""
        return reduce == tuple(range(rank - 1)) and self.config.scale and self.config.center

    def _update_moving(
        self, moving_mean: Array, moving_var: Array, mean: Array, var: Array
    ) -> None:
        momentum = self.config.momentum
        moving_mean *= momentum
        moving_mean += mean.reshape(moving_mean.shape) * (1.0 - momentum)
        moving_var *= momentum
        moving_var += var.reshape(moving_var.shape) * (1.0 - momentum)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        c: _BatchNormCache = cache
        compiled = c.xhat is None
        fused = (
            batch_norm.train_backward(
                grad_output, c.x, (c.mean, c.inv, params[0]), ctx.need_input_grad, c.relu_out
            )
            if c.training and compiled
            else None
        )
        if fused is not None:
            for target, value in zip(grads[:2], fused[:2], strict=True):
                if target is not None:
                    target[...] = value
            return fused[2]
        if c.relu_out is not None:
            grad_output = activations.relu_grad_of_output(c.relu_out, grad_output)
        wants_xhat = c.training or (self.config.scale and grads[0] is not None)
        # the composite's xhat = (x - mean) * inv, computed again after the compiled forward
        xhat = c.xhat if not compiled or not wants_xhat else (c.x - c.mean) * c.inv
        self._affine_grads(grad_output, xhat, c.reduce, grads)
        if not ctx.need_input_grad:
            return None
        dxhat = grad_output * c.gamma if c.gamma is not None else grad_output
        if not c.training:
            return dxhat * c.inv
        mean_d = dxhat.mean(axis=c.reduce, keepdims=True)
        mean_dx = (dxhat * xhat).mean(axis=c.reduce, keepdims=True)
        return (dxhat - mean_d - xhat * mean_dx) * c.inv


class _BatchNormCache(NamedTuple):
    """What BatchNormalization's backward needs: the input and either xhat (NumPy composite)
    or the mean that gives it again, xhat = (x - mean) * inv (compiled passes, which keep no
    xhat; mean is None after the composite). `relu_out`: the output of a ReLU fused after the
    layer, whose mask backward applies first (None when there is none)."""

    x: Array
    mean: Array | None
    xhat: Array | None
    inv: Array
    gamma: Any
    reduce: tuple[int, ...]
    training: bool
    relu_out: Array | None


# ----- LayerNormalization -------------------------------------------------------------------
class LayerNormalizationConfig(_NormConfig):
    type: Literal["LayerNormalization"] = "LayerNormalization"
    axis: int | list[int] = -1


@register
class LayerNormalization(_Normalizer):
    """Normalizes each sample over `axis` (the last by default). (N, ..., C) -> same shape.

    Weights gamma, beta with the shape of the normalized axes: `LayerNormalization()` on 64
    features has 128 parameters.
    """

    type_name = "LayerNormalization"
    config_class = LayerNormalizationConfig
    config: LayerNormalizationConfig

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        shape = _param_shape(input_shape, self.axes_for(len(input_shape)), self.type_name)
        return _affine_specs(self.config, shape)

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        xp = backend.backend_of(inputs).xp
        rank = inputs.ndim
        axes = self.axes_for(rank)
        gamma, beta = self._affine(params, rank, axes)
        reduce = tuple(a for a in range(rank) if a not in axes)
        fused = (
            layer_norm.forward_last_axis(inputs, gamma, beta, self.config.epsilon)
            if axes == (rank - 1,)
            else None
        )
        if fused is not None:
            y, xhat, inv = fused
            return y, (xhat, inv, gamma, axes, reduce)
        mean = inputs.mean(axis=axes, keepdims=True)
        centered = inputs - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        inv = 1.0 / xp.sqrt(var + self.config.epsilon)
        xhat = centered * inv
        return self._apply(xhat, gamma, beta), (xhat, inv, gamma, axes, reduce)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        xhat, inv, gamma, axes, reduce = cache
        if ctx.need_input_grad and axes == (xhat.ndim - 1,):
            c = self.config
            dgamma = grads[0] if c.scale else None
            dbeta = grads[int(c.scale)] if c.center else None
            fused = layer_norm.backward_last_axis(grad_output, xhat, inv, gamma, dgamma, dbeta)
            if fused is not None:
                return fused
        self._affine_grads(grad_output, xhat, reduce, grads)
        if not ctx.need_input_grad:
            return None
        dxhat = grad_output * gamma if gamma is not None else grad_output
        mean_d = dxhat.mean(axis=axes, keepdims=True)
        mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
        return (dxhat - mean_d - xhat * mean_dx) * inv
