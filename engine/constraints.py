"""Weight constraints applied after each optimizer update, with Keras's formulas and defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from engine.config.base import SpecConfig
from engine.lazy import backend

EPSILON = 1e-7  # keras.config.epsilon()

ConstraintName = Literal["max_norm", "non_neg", "unit_norm", "min_max_norm"]


class ConstraintConfig(SpecConfig):
    """The map form: `{type: max_norm, max_value: 3, axis: 0}`."""

    type: ConstraintName
    max_value: float | None = None
    min_value: float | None = None
    rate: float | None = None
    axis: int | list[int] | None = None

    @model_validator(mode="after")
    def _only_own_arguments(self) -> ConstraintConfig:
        allowed = _ARGUMENTS[self.type]
        extra = sorted({k for k in self.model_fields_set if k != "type"} - allowed)
        if extra:
            takes = ", ".join(sorted(allowed)) or "no arguments"
            raise ValueError(f"{', '.join(extra)} does not apply to {self.type}; it takes {takes}")
        return self

    def __call__(self, w: Any) -> Any:
        """The constrained weight, as a Keras constraint object returns it."""
        from engine.tensor import Tensor, as_tensor

        return Tensor(_build(self)(as_tensor(w).data))


class MaxNorm(ConstraintConfig):
    """Keras's `constraints.MaxNorm(max_value=2, axis=0)`: norms above max_value scaled down."""

    def __init__(self, max_value: float = 2.0, axis: int | list[int] = 0) -> None:
        super().__init__(type="max_norm", max_value=max_value, axis=axis)


class NonNeg(ConstraintConfig):
    """Keras's `constraints.NonNeg()`: negative weights set to 0."""

    def __init__(self) -> None:
        super().__init__(type="non_neg")


class UnitNorm(ConstraintConfig):
    """Keras's `constraints.UnitNorm(axis=0)`: norms scaled to 1."""

    def __init__(self, axis: int | list[int] = 0) -> None:
        super().__init__(type="unit_norm", axis=axis)


class MinMaxNorm(ConstraintConfig):
    """Keras's `constraints.MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)`."""

    def __init__(
        self,
        min_value: float = 0.0,
        max_value: float = 1.0,
        rate: float = 1.0,
        axis: int | list[int] = 0,
    ) -> None:
        super().__init__(
            type="min_max_norm", min_value=min_value, max_value=max_value, rate=rate, axis=axis
        )


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm


_ARGUMENTS: dict[str, set[str]] = {
    "non_neg": set(),
    "unit_norm": {"axis"},
    "max_norm": {"max_value", "axis"},
    "min_max_norm": {"min_value", "max_value", "rate", "axis"},
}


ConstraintSpec = Annotated[ConstraintName | ConstraintConfig, Field(union_mode="left_to_right")]
Constraint = Callable[[Any], Any]


def _norms(w: Any, axis: Any) -> Any:
    xp = backend.backend_of(w).xp
    ax = tuple(axis) if isinstance(axis, list) else axis
    return xp.sqrt((w * w).sum(axis=ax, keepdims=True))


def _build(c: ConstraintConfig) -> Constraint:
    axis = 0 if c.axis is None else c.axis
    if c.type == "non_neg":
        return lambda w: w * (w >= 0).astype(w.dtype)
    if c.type == "unit_norm":
        return lambda w: w / (EPSILON + _norms(w, axis))
    if c.type == "max_norm":
        max_value = 2.0 if c.max_value is None else c.max_value

        def max_norm(w: Any) -> Any:
            xp = backend.backend_of(w).xp
            norms = _norms(w, axis)
            return w * (xp.clip(norms, 0, max_value) / (EPSILON + norms))

        return max_norm
    lo = 0.0 if c.min_value is None else c.min_value
    hi = 1.0 if c.max_value is None else c.max_value
    rate = 1.0 if c.rate is None else c.rate

    def min_max_norm(w: Any) -> Any:
        xp = backend.backend_of(w).xp
        norms = _norms(w, axis)
        desired = rate * xp.clip(norms, lo, hi) + (1 - rate) * norms
        return w * (desired / (EPSILON + norms))

    return min_max_norm


def get(spec: ConstraintSpec | str | dict[str, Any] | Constraint | None) -> Constraint | None:
    """Resolve a name or config map to a function `w -> constrained w` (None stays None)."""
    if spec is None:
        return None
    if callable(spec) and not isinstance(spec, (str, dict, BaseModel)):
        return spec
    if isinstance(spec, str):
        spec = ConstraintConfig(type=spec)  # type: ignore[arg-type]
    elif isinstance(spec, dict):
        spec = ConstraintConfig(**spec)
    assert isinstance(spec, ConstraintConfig)
    return _build(spec)


def serialize(spec: Any) -> Any:
    """The spec form of a constraint spec (a name stays a name)."""
    return spec.model_dump(exclude_none=True) if isinstance(spec, BaseModel) else spec
