"""Weight initializers with Keras 3's names, defaults and formulas.

An initializer is `(shape, rng, dtype) -> NumPy array`; weights are made on the host from the
model's one seeded generator (so a seed gives the same weights on every device) and then moved
to the device. Fans follow Keras's `compute_fans`: a kernel (..., in, out) has
fan_in = in * receptive field and fan_out = out * receptive field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from engine.config.base import SpecConfig
from engine.lazy import numpy as np

# Keras divides by this so that a normal truncated at two standard deviations keeps the variance.
TRUNCATION_STDDEV_FACTOR = 0.87962566103423978

InitializerName = Literal[
    "zeros",
    "ones",
    "constant",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "identity",
]


class InitializerConfig(SpecConfig):
    """The map form: `{type: random_normal, mean: 0.0, stddev: 0.05}`."""

    type: InitializerName
    value: float | None = None
    mean: float | None = None
    stddev: float | None = None
    minval: float | None = None
    maxval: float | None = None
    gain: float | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _only_own_arguments(self) -> InitializerConfig:
        allowed = _ARGUMENTS.get(self.type, {"seed"})
        given = {k for k in self.model_fields_set if k != "type"}
        extra = sorted(given - allowed)
        if extra:
            takes = ", ".join(sorted(allowed)) or "no arguments"
            raise ValueError(f"{', '.join(extra)} does not apply to {self.type}; it takes {takes}")
        return self


# Keras 3's arguments per initializer (variance-scaling ones take only a seed).
_ARGUMENTS: dict[str, set[str]] = {
    "zeros": set(),
    "ones": set(),
    "constant": {"value"},
    "random_normal": {"mean", "stddev", "seed"},
    "truncated_normal": {"mean", "stddev", "seed"},
    "random_uniform": {"minval", "maxval", "seed"},
    "orthogonal": {"gain", "seed"},
    "identity": {"gain"},
}


class _Keras(InitializerConfig):
    """Keras's initializer classes: a config of one `kind`, made from the class's arguments."""

    kind: ClassVar[InitializerName]

    def __init__(self, **arguments: Any) -> None:
        given = {k: v for k, v in arguments.items() if v is not None}
        super().__init__(type=self.kind, **given)


class _Seeded(_Keras):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)


class Zeros(_Keras):
    kind = "zeros"


class Ones(_Keras):
    kind = "ones"


class Constant(_Keras):
    kind = "constant"

    def __init__(self, value: float = 0.0) -> None:
        super().__init__(value=value)


class RandomNormal(_Keras):
    kind: ClassVar[InitializerName] = "random_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(mean=mean, stddev=stddev, seed=seed)


class TruncatedNormal(RandomNormal):
    kind = "truncated_normal"


class RandomUniform(_Keras):
    kind = "random_uniform"

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        super().__init__(minval=minval, maxval=maxval, seed=seed)


class Orthogonal(_Keras):
    kind = "orthogonal"

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(gain=gain, seed=seed)


class Identity(_Keras):
    kind = "identity"

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__(gain=gain)


class GlorotUniform(_Seeded):
    kind = "glorot_uniform"


class GlorotNormal(_Seeded):
    kind = "glorot_normal"


class HeNormal(_Seeded):
    kind = "he_normal"


class HeUniform(_Seeded):
    kind = "he_uniform"


class LecunNormal(_Seeded):
    kind = "lecun_normal"


class LecunUniform(_Seeded):
    kind = "lecun_uniform"


InitializerSpec = Annotated[InitializerName | InitializerConfig, Field(union_mode="left_to_right")]
Initializer = Callable[[tuple[int, ...], "np.random.Generator", Any], "np.ndarray"]


def compute_fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """(fan_in, fan_out) exactly as Keras computes them."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _truncated_normal(
    rng: np.random.Generator, shape: tuple[int, ...], mean: float, stddev: float
) -> np.ndarray:
    """Normal samples redrawn until they fall within two standard deviations of the mean."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return mean + stddev * out


def _variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        stddev = math.sqrt(variance) / TRUNCATION_STDDEV_FACTOR
        return _truncated_normal(rng, shape, 0.0, stddev).astype(dtype)

    return init


def _orthogonal(gain: float) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"orthogonal needs a shape of rank 2 or more; got {shape}")
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(flat)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (gain * q[:rows, :cols].reshape(shape)).astype(dtype)

    return init


def _identity(gain: float) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"identity needs a 2D shape; got {shape}")
        return (gain * np.eye(*shape)).astype(dtype)

    return init


def _seeded(init: Initializer, seed: int) -> Initializer:
    """As in Keras 3, an initializer given a seed draws the same values on every call."""

    def seeded(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
        return init(shape, np.random.default_rng(seed), dtype)

    return seeded


def _build(config: InitializerConfig) -> Initializer:
    init = _build_unseeded(config)
    return init if config.seed is None else _seeded(init, config.seed)


def _build_unseeded(config: InitializerConfig) -> Initializer:
    name = config.type
    mean = config.mean if config.mean is not None else 0.0
    stddev = config.stddev if config.stddev is not None else 0.05
    gain = config.gain if config.gain is not None else 1.0
    if name in ("zeros", "ones", "constant"):
        value = {"zeros": 0.0, "ones": 1.0}.get(name, config.value or 0.0)
        return lambda shape, rng, dtype: np.full(shape, value, dtype=dtype)
    if name == "random_normal":
        return lambda shape, rng, dtype: rng.normal(mean, stddev, shape).astype(dtype)
    if name == "random_uniform":
        lo = config.minval if config.minval is not None else -0.05
        hi = config.maxval if config.maxval is not None else 0.05
        return lambda shape, rng, dtype: rng.uniform(lo, hi, shape).astype(dtype)
    if name == "truncated_normal":
        return lambda shape, rng, dtype: _truncated_normal(rng, shape, mean, stddev).astype(dtype)
    if name == "orthogonal":
        return _orthogonal(gain)
    if name == "identity":
        return _identity(gain)
    scale, mode, dist = _VARIANCE_SCALING[name]
    return _variance_scaling(scale, mode, dist)


_VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "normal"),
    "he_normal": (2.0, "fan_in", "normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
}


def get(spec: InitializerSpec | str | dict[str, Any] | Initializer) -> Initializer:
    """Resolve a name, a config map or a callable to an initializer function."""
    if callable(spec) and not isinstance(spec, (str, dict, BaseModel)):
        return spec
    if isinstance(spec, str):
        spec = InitializerConfig(type=spec)  # type: ignore[arg-type]
    elif isinstance(spec, dict):
        spec = InitializerConfig(**spec)
    assert isinstance(spec, InitializerConfig)
    return _build(spec)


def serialize(spec: Any) -> Any:
    """The spec form of an initializer spec (a name stays a name)."""
    if isinstance(spec, BaseModel):
        return spec.model_dump(exclude_none=True)
    return spec
