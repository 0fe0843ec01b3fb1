"""Spatial reshaping layers of Keras 3: UpSampling1D/2D, ZeroPadding1D/2D, Cropping1D/2D.

Channels last. Each moves values without weights, so backward is the matching inverse: a sum
over the repeated cells, the slice without the padding, the cropped input padded back.
- UpSampling1D(size=2): (B, T, C) -> (B, T*size, C), each step repeated.
- UpSampling2D(size=(2, 2), interpolation="nearest"): (B, H, W, C) -> (B, H*sh, W*sw, C).
- ZeroPadding1D(padding=1): (B, T, C) -> (B, T + left + right, C).
- ZeroPadding2D(padding=(1, 1)): rows and columns; `((top, bottom), (left, right))` too.
- Cropping1D(cropping=(1, 1)), Cropping2D(cropping=((0, 0), (0, 0))): the reverse.
Example: `UpSampling2D(2)` on (None, 7, 7, 16) gives (None, 14, 14, 16).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import NonNegativeInt, PositiveInt

from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError
from engine.layers.registry import register
from engine.lazy import backend

Pair = tuple[int, int]


def _pairs(value: Any, rank: int, name: str) -> tuple[Pair, ...]:
    """Keras's padding/cropping forms: n, (a, b) per axis symmetric or (1-d) (before, after),
    or ((before, after), ...) per axis."""
    if isinstance(value, int):
        return ((value, value),) * rank
    items = list(value)
    if rank == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return ((items[0], items[1]),)
    if len(items) != rank:
        raise ValueError(f"{name} needs {rank} entries; got {value!r}")
    out = []
    for v in items:
        out.append((v, v) if isinstance(v, int) else (int(v[0]), int(v[1])))
    return tuple(out)


def _sizes(value: Any, rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _check_rank(layer: Layer, input_shape: Any, rank: int) -> None:
    if len(input_shape) != rank + 2:
        raise ShapeError(
            f"{layer.type_name} needs a rank-{rank + 2} input (batch, {rank} spatial axes, "
            f"channels); got {tuple(input_shape)}"
        )


class _Spatial(Layer):
    """A weightless reshaping over the `rank` spatial axes after the batch."""

    concurrent_inference = True
    rank: ClassVar[int] = 1

    def _grad(self, ctx: CallContext, value: Any) -> Any:
        return value if ctx.need_input_grad else None


# ----- UpSampling ------------------------------------------------------------------------------
class UpSampling1DConfig(LayerConfig):
    type: Literal["UpSampling1D"] = "UpSampling1D"
    size: PositiveInt = 2


class UpSampling2DConfig(LayerConfig):
    type: Literal["UpSampling2D"] = "UpSampling2D"
    size: PositiveInt | tuple[PositiveInt, PositiveInt] = (2, 2)
    data_format: Literal["channels_last"] = "channels_last"
    interpolation: Literal["nearest"] = "nearest"


class _UpSampling(_Spatial):
    positional: ClassVar[tuple[str, ...]] = ("size",)

    def _factors(self) -> tuple[int, ...]:
        return _sizes(self.config.size, self.rank)

    def compute_output_shape(self, input_shape: Any) -> Any:
        _check_rank(self, input_shape, self.rank)
        dims = [
            None if d is None else d * f
            for d, f in zip(input_shape[1:-1], self._factors(), strict=True)
        ]
        return (input_shape[0], *dims, input_shape[-1])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        xp = backend.backend_of(inputs).xp
        y = inputs
        for axis, f in enumerate(self._factors(), start=1):
            if f > 1:
                y = xp.repeat(y, f, axis=axis)
        return y, inputs.shape

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        if not ctx.need_input_grad:
            return None
        shape = cache
        split: list[int] = [shape[0]]
        for n, f in zip(shape[1:-1], self._factors(), strict=True):
            split += [n, f]
        g = grad_output.reshape(*split, shape[-1])
        return g.sum(axis=tuple(range(2, 2 * self.rank + 1, 2)))


@register
class UpSampling1D(_UpSampling):
    type_name = "UpSampling1D"
    config_class = UpSampling1DConfig
    rank = 1


@register
class UpSampling2D(_UpSampling):
    type_name = "UpSampling2D"
    config_class = UpSampling2DConfig
    positional = ("size", "data_format", "interpolation")
    rank = 2


# ----- ZeroPadding and Cropping ----------------------------------------------------------------
class ZeroPadding1DConfig(LayerConfig):
    type: Literal["ZeroPadding1D"] = "ZeroPadding1D"
    padding: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = 1


class ZeroPadding2DConfig(LayerConfig):
    type: Literal["ZeroPadding2D"] = "ZeroPadding2D"
    padding: (
        NonNegativeInt
        | tuple[NonNegativeInt, NonNegativeInt]
        | tuple[tuple[NonNegativeInt, NonNegativeInt], tuple[NonNegativeInt, NonNegativeInt]]
    ) = (1, 1)
    data_format: Literal["channels_last"] = "channels_last"


class Cropping1DConfig(LayerConfig):
    type: Literal["Cropping1D"] = "Cropping1D"
    cropping: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = (1, 1)


class Cropping2DConfig(LayerConfig):
    type: Literal["Cropping2D"] = "Cropping2D"
    cropping: (
        NonNegativeInt
        | tuple[NonNegativeInt, NonNegativeInt]
        | tuple[tuple[NonNegativeInt, NonNegativeInt], tuple[NonNegativeInt, NonNegativeInt]]
    ) = ((0, 0), (0, 0))
    data_format: Literal["channels_last"] = "channels_last"


class _Border(_Spatial):
    """ZeroPadding (sign +1) or Cropping (sign -1) by (before, after) per spatial axis."""

    sign: ClassVar[int] = 1
    field: ClassVar[str] = "padding"

    def amounts(self) -> tuple[Pair, ...]:
        return _pairs(getattr(self.config, self.field), self.rank, self.field)

    def compute_output_shape(self, input_shape: Any) -> Any:
        _check_rank(self, input_shape, self.rank)
        dims = []
        for n, (a, b) in zip(input_shape[1:-1], self.amounts(), strict=True):
            size = None if n is None else n + self.sign * (a + b)
            if size is not None and size <= 0:
                raise ShapeError(
                    f"cropping {(a, b)} leaves nothing of an axis of size {n}", field=self.field
                )
            dims.append(size)
        return (input_shape[0], *dims, input_shape[-1])

    def _window(self, shape: tuple[int, ...]) -> tuple[slice, ...]:
        """Where an input of `shape` sits in the padded output, or what cropping keeps of it."""
        inner = [
            slice(a, a + n) if self.sign > 0 else slice(a, n - b)
            for n, (a, b) in zip(shape[1:-1], self.amounts(), strict=True)
        ]
        return (slice(None), *inner, slice(None))

    def _pad(self, x: Array, amounts: tuple[Pair, ...]) -> Array:
        xp = backend.backend_of(x).xp
        return xp.pad(x, ((0, 0), *amounts, (0, 0)))

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        if self.sign > 0:
            return self._pad(inputs, self.amounts()), inputs.shape
        return inputs[self._window(inputs.shape)], inputs.shape

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        if not ctx.need_input_grad:
            return None
        if self.sign > 0:
            return grad_output[self._window(cache)]
        return self._pad(grad_output, self.amounts())


@register
class ZeroPadding1D(_Border):
    type_name = "ZeroPadding1D"
    config_class = ZeroPadding1DConfig
    positional = ("padding",)
    rank = 1


@register
class ZeroPadding2D(_Border):
    type_name = "ZeroPadding2D"
    config_class = ZeroPadding2DConfig
    positional = ("padding", "data_format")
    rank = 2


@register
class Cropping1D(_Border):
    type_name = "Cropping1D"
    config_class = Cropping1DConfig
    positional = ("cropping",)
    rank = 1
    sign = -1
    field = "cropping"


@register
class Cropping2D(_Border):
    type_name = "Cropping2D"
    config_class = Cropping2DConfig
    positional = ("cropping", "data_format")
    rank = 2
    sign = -1
    field = "cropping"
