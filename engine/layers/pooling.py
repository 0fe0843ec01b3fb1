"""Max/Average pooling (1D/2D/3D) and global pooling (1D/2D), channels last, as in Keras 3.

Windowed pooling: (batch, *spatial, C) -> (batch, *out, C) with out = floor((n - p) / s) + 1
for `valid` and ceil(n / s) for `same`; strides default to pool_size. Global pooling reduces
every spatial axis: (batch, *spatial, C) -> (batch, C), or keeps them as 1 with keepdims.
Example: `MaxPooling2D(2)` on (None, 26, 26, 32) gives (None, 13, 13, 32). No weights.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import PositiveInt, model_validator

from engine.conv_geometry import as_tuple, conv_output_length
from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError
from engine.layers.registry import register
from engine.lazy import backend, pool_kernels

IntOrTuple = PositiveInt | tuple[PositiveInt, ...]
Mode = Literal["max", "avg"]


class PoolConfig(LayerConfig):
    """Keras's pooling arguments; `rank` fixes how many values the tuples take."""

    rank: ClassVar[int] = 2
    pool_size: IntOrTuple = 2
    strides: IntOrTuple | None = None
    padding: Literal["valid", "same"] = "valid"
    data_format: Literal["channels_last"] = "channels_last"

    @model_validator(mode="after")
    def _check(self) -> PoolConfig:
        as_tuple(self.pool_size, self.rank, "pool_size")
        if self.strides is not None:
            as_tuple(self.strides, self.rank, "strides")
        return self

    def tuples(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(pool_size, strides), strides defaulting to pool_size."""
        pool = as_tuple(self.pool_size, self.rank, "pool_size")
        strides = pool if self.strides is None else as_tuple(self.strides, self.rank, "strides")
        return pool, strides


def _check_rank(layer: Layer, input_shape: Any, rank: int) -> None:
    if len(input_shape) != rank + 2:
        raise ShapeError(
            f"{layer.type_name} needs a rank-{rank + 2} input (batch, {rank} spatial axes, "
            f"channels); got {tuple(input_shape)}",
            hint="add a Reshape to give the input its channels axis"
            if len(input_shape) == rank + 1
            else None,
        )


class Pool(Layer):
    """Windowed pooling; subclasses name their config and `mode`."""

    concurrent_inference = True

    positional = ("pool_size", "strides", "padding")
    mode: ClassVar[Mode] = "max"
    config: PoolConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        c = self.config
        _check_rank(self, input_shape, c.rank)
        out = []
        for n, p, s in zip(input_shape[1:-1], *c.tuples(), strict=True):
            length = conv_output_length(n, p, s, c.padding)
            if length is not None and length <= 0:
                raise ShapeError(
                    f"pool_size {p} is larger than the input length {n} with padding {c.padding}",
                    field="pool_size",
                    hint="use padding: same or a smaller pool_size",
                )
            out.append(length)
        return (input_shape[0], *out, input_shape[-1])

    def flops(self, input_shape: Any) -> int:
        out = self.compute_output_shape(input_shape)
        return math.prod(d or 1 for d in out[1:]) * math.prod(self.config.tuples()[0])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        c = self.config
        pool, strides = c.tuples()
        return pool_kernels.pool_forward(inputs, pool, strides, c.padding, self.mode)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return pool_kernels.pool_backward(cache, grad_output) if ctx.need_input_grad else None


def _pool_config(name: str, rank: int) -> type[PoolConfig]:
    """A config class tagged `type: name` with `rank` spatial axes."""
    annotations = {"type": Literal[name], "rank": ClassVar[int]}
    namespace = {"__annotations__": annotations, "type": name, "rank": rank}
    return type(f"{name}Config", (PoolConfig,), namespace)


def _register_pool(name: str, rank: int, mode: Mode) -> type[Pool]:
    cls = type(
        name,
        (Pool,),
        {
            "type_name": name,
            "config_class": _pool_config(name, rank),
            "mode": mode,
            "__doc__": f"{name}: {mode} pooling, rank {rank}.",
        },
    )
    return register(cls)


MaxPooling1D = _register_pool("MaxPooling1D", 1, "max")
MaxPooling2D = _register_pool("MaxPooling2D", 2, "max")
MaxPooling3D = _register_pool("MaxPooling3D", 3, "max")
AveragePooling1D = _register_pool("AveragePooling1D", 1, "avg")
AveragePooling2D = _register_pool("AveragePooling2D", 2, "avg")
AveragePooling3D = _register_pool("AveragePooling3D", 3, "avg")


class GlobalPoolConfig(LayerConfig):
    rank: ClassVar[int] = 1
    data_format: Literal["channels_last"] = "channels_last"
    keepdims: bool = False


class GlobalPool(Layer):
    """Reduce every spatial axis with max or mean; subclasses name their config and `mode`."""

    concurrent_inference = True

    mode: ClassVar[Mode] = "max"
    config: GlobalPoolConfig

    def compute_output_shape(self, input_shape: Any) -> Any:
        rank = self.config.rank
        _check_rank(self, input_shape, rank)
        if self.config.keepdims:
            return (input_shape[0], *([1] * rank), input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def flops(self, input_shape: Any) -> int:
        return math.prod(d or 1 for d in input_shape[1:])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        xp = backend.backend_of(inputs).xp
        n, c = inputs.shape[0], inputs.shape[-1]
        flat = inputs.reshape(n, -1, c)
        keep = self.config.keepdims
        out_shape = (n, *([1] * self.config.rank), c) if keep else (n, c)
        if self.mode == "max":
            idx = flat.argmax(axis=1)
            y = xp.take_along_axis(flat, idx[:, None, :], axis=1)[:, 0, :]
            return y.reshape(out_shape), (inputs.shape, idx, None)
        weights = None
        if ctx.mask is not None and self.supports_masking:
            weights = xp.asarray(ctx.mask, dtype=inputs.dtype).reshape(n, -1, 1)
            weights = weights / xp.maximum(weights.sum(axis=1, keepdims=True), 1)
            y = (flat * weights).sum(axis=1)
        else:
            y = flat.mean(axis=1)
        return y.reshape(out_shape), (inputs.shape, None, weights)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        if not ctx.need_input_grad:
            return None
        xp = backend.backend_of(grad_output).xp
        shape, idx, weights = cache
        n, c = shape[0], shape[-1]
        dy = grad_output.reshape(n, 1, c)
        steps = math.prod(shape[1:-1])
        if idx is not None:
            hit = xp.arange(steps).reshape(1, -1, 1) == idx[:, None, :]
            return (hit * dy).reshape(shape)
        if weights is not None:
            return (weights * dy).reshape(shape)
        return xp.broadcast_to(dy / steps, (n, steps, c)).reshape(shape)

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return None


def _register_global(name: str, rank: int, mode: Mode, masking: bool) -> type[GlobalPool]:
    annotations = {"type": Literal[name], "rank": ClassVar[int]}
    config = type(
        f"{name}Config",
        (GlobalPoolConfig,),
        {"__annotations__": annotations, "type": name, "rank": rank},
    )
    doc = f"{name}: {mode} over every spatial axis, rank {rank}."
    attrs = {
        "type_name": name,
        "config_class": config,
        "mode": mode,
        "supports_masking": masking,
        "__doc__": doc,
    }
    return register(type(name, (GlobalPool,), attrs))


GlobalMaxPooling1D = _register_global("GlobalMaxPooling1D", 1, "max", False)
GlobalMaxPooling2D = _register_global("GlobalMaxPooling2D", 2, "max", False)
GlobalAveragePooling1D = _register_global("GlobalAveragePooling1D", 1, "avg", True)
GlobalAveragePooling2D = _register_global("GlobalAveragePooling2D", 2, "avg", False)
