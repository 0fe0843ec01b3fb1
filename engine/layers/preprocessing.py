"""Normalization: standardize features with a given or adapted mean and variance (Keras 3).

y = (x - mean) / max(sqrt(variance), 1e-7), or with `invert` y = mean + x * max(sqrt(variance),
1e-7). Statistics are kept per position of `axis` (the last by default; None for one scalar
pair). Given `mean` and `variance` the layer has no weights (Keras reports 0 parameters);
otherwise it has non-trainable weights mean, variance and count (2n + 1 parameters), which
`adapt(data)` fills with the population statistics of the data and the number of values each
statistic was taken over.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

from pydantic import model_validator

from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError, WeightSpec
from engine.layers.moments import Moments
from engine.layers.registry import register
from engine.lazy import backend
from engine.lazy import numpy as np

# Keras's backend.epsilon(): the floor of the standard deviation
STD_FLOOR = 1e-7

Values = float | list[float] | list[list[float]]


class NormalizationConfig(LayerConfig):
    type: Literal["Normalization"] = "Normalization"
    axis: int | list[int] | None = -1
    mean: Values | None = None
    variance: Values | None = None
    invert: bool = False

    @model_validator(mode="after")
    def _both_or_neither(self) -> NormalizationConfig:
        if (self.mean is None) != (self.variance is None):
            raise ValueError(
                "give both `mean` and `variance`, or neither (to adapt them to the data); "
                f"got mean={self.mean} and variance={self.variance}"
            )
        mean_shape = _shape("mean", self.mean)
        variance_shape = _shape("variance", self.variance)
        if mean_shape != variance_shape:
            raise ValueError(
                f"`mean` and `variance` must have the same shape; got {mean_shape} "
                f"and {variance_shape}"
            )
        return self


def _shape(name: str, values: Values | None) -> tuple[int, ...]:
    """NumPy's shape of a scalar, a list or a list of rows (the spec is checked without NumPy)."""
    if not isinstance(values, list):
        return ()
    rows = {len(row) if isinstance(row, list) else None for row in values}
    if len(rows) > 1:
        raise ValueError(f"the rows of `{name}` must all be lists of one length; got {values}")
    row = rows.pop() if rows else None
    return (len(values),) if row is None else (len(values), row)


@register
class Normalization(Layer):
    """(N, ..., C) -> same shape, standardized per position of `axis`."""

    type_name = "Normalization"
    concurrent_inference = True
    config_class = NormalizationConfig
    supports_masking = True
    config: NormalizationConfig

    @property
    def adapts(self) -> bool:
        """True when the statistics are weights to adapt rather than given numbers."""
        return self.config.mean is None

    @property
    def is_adapted(self) -> bool:
        """Whether the statistics are ready: given, adapted, or loaded (a count above zero).

        The training loop adapts the layers where this is False before fitting.
        """
        if not self.adapts:
            return True
        if not self.built:
            return False
        count = next(w for w in self.weights if w.name.endswith("/count"))
        return float(count.numpy()) > 0

    def keep_axes(self, rank: int) -> tuple[int, ...]:
        axis = self.config.axis
        listed = [] if axis is None else [axis] if isinstance(axis, int) else axis
        if any(not -rank < a < rank or a % rank == 0 for a in listed):
            raise ShapeError(
                f"Normalization axis {axis} is out of range for an input of rank {rank}",
                field="axis",
            )
        return tuple(sorted(a % rank for a in listed))

    def _stat_shape(self, input_shape: Any) -> tuple[int, ...]:
        axes = self.keep_axes(len(input_shape))
        dims = [input_shape[a] for a in axes]
        if any(d is None for d in dims):
            raise ShapeError(
                f"Normalization needs known sizes on its axes; got {input_shape}", field="axis"
            )
        return tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = self._stat_shape(input_shape)
        given = self.config.mean
        if given is not None and np.ndim(given) > len(shape):
            raise ShapeError(
                f"`mean` has rank {np.ndim(given)}, more than the {len(shape)} normalized axes",
                field="mean",
            )
        return input_shape

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        self.compute_output_shape(input_shape)
        if not self.adapts:
            return []
        shape = self._stat_shape(input_shape)
        return [
            WeightSpec("mean", shape, "zeros", False),
            WeightSpec("variance", shape, "ones", False),
            WeightSpec("count", (), "zeros", False),
        ]

    def flops(self, input_shape: Any) -> int:
        return 2 * math.prod(d or 1 for d in input_shape[1:])

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Set mean and variance (population) and count from `data`, batch axis first: an
        array, or (Keras's dataset case) an iterable of batches, of which `steps` at most are
        read; batches are merged one by one, so the data never has to fit in memory."""
        self.set_moments(self.moments_of(data, steps))

    def moments_of(self, data: Any, steps: int | None = None) -> Moments:
        """The moments `adapt` takes from `data` (empty for no rows: a rank's empty share)."""
        if not self.adapts:
            raise ValueError(
                f"layer {self.name!r} was given mean and variance; it has nothing to adapt"
            )
        if steps is not None and steps < 1:
            raise ValueError(f"adapt's steps must be at least 1; got {steps}")
        whole = _as_array(data)
        batches = [whole] if whole is not None else itertools.islice(data, steps)
        moments = Moments()
        for batch in batches:
            array = _as_array(batch)
            if array is None:
                raise ValueError(f"adapt takes arrays or batches of arrays; got {type(batch)}")
            self._check_shape(array.shape)
            keep = self.keep_axes(array.ndim)
            moments.update(array, tuple(a for a in range(array.ndim) if a not in keep))
        return moments

    def set_moments(self, moments: Moments) -> None:
        """mean, variance and count from moments taken (and maybe merged over ranks)."""
        if moments.mean is None:
            raise ValueError(f"layer {self.name!r}: adapt got no data")
        stats = {
            "mean": moments.mean,
            "variance": moments.variance,
            "count": np.asarray(float(moments.count)),
        }
        for w in self.weights:
            w.assign(stats[w.name.rsplit("/", 1)[-1]].astype(w.numpy().dtype))

    @property
    def stat_shape(self) -> tuple[int, ...]:
        """The shape of mean and variance (the kept axes' sizes)."""
        return self._stat_shape(self.input_shape)

    def _check_shape(self, array_shape: tuple[int, ...]) -> None:
        shape = (None, *array_shape[1:])
        if not self.built:
            self.build(shape)
        elif self._stat_shape(shape) != self._stat_shape(self.input_shape):
            raise ValueError(
                f"layer {self.name!r} was built for inputs {self.input_shape}; "
                f"adapt got data of shape {array_shape}"
            )

    def _stats(self, params: list[Array], like: Array) -> tuple[Array, Array]:
        """mean and std (floored), shaped to broadcast against `like`."""
        xp = backend.backend_of(like).xp
        rank = like.ndim
        keep = self.keep_axes(rank)
        if self.adapts:
            mean, variance = params[0], params[1]
        else:
            mean = xp.asarray(self.config.mean, dtype=like.dtype)
            variance = xp.asarray(self.config.variance, dtype=like.dtype)
        shape = [1] * rank
        # given statistics line up with the kept axes from the right, as in Keras
        for axis, size in zip(keep[len(keep) - mean.ndim :], mean.shape, strict=True):
            shape[axis] = size
        std = xp.maximum(xp.sqrt(variance), STD_FLOOR).astype(like.dtype, copy=False)
        return mean.reshape(shape), std.reshape(shape)

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        mean, std = self._stats(params, inputs)
        y = mean + inputs * std if self.config.invert else (inputs - mean) / std
        return y, std

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        for g in grads:
            if g is not None:
                g[...] = 0
        if not ctx.need_input_grad:
            return None
        std = cache
        return grad_output * std if self.config.invert else grad_output / std


def _as_array(data: Any) -> np.ndarray | None:
    """`data` as a float64 array when it is one (an array, tensor or nested list, as Keras reads
    them); None for an iterable of batches (a generator, a stream's batches)."""
    if isinstance(data, np.ndarray | list | tuple | float | int) or hasattr(data, "numpy"):
        return np.asarray(getattr(data, "numpy", lambda: data)(), dtype=np.float64)
    return None
