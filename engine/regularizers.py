"""Weight and activity regularizers (l1, l2, l1_l2) with Keras's formulas and defaults.

A regularizer adds `penalty(w)` to the loss and `grad(w)` to the weight's gradient. As Keras
documents, a bare name means a factor of 0.01: `l2` is `L2(0.01)` and `l1_l2` is
`L1L2(l1=0.01, l2=0.01)` (Keras 3's own lookup of the bare `l1_l2` builds `L1L2()`, whose
factors are 0; the documented 0.01 is kept here). In the map form `l1_l2` follows Keras's
`L1L2` defaults: a factor not given is 0, so `{type: l1_l2, l2: 0.001}` has no L1 penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from engine.config.base import SpecConfig
from engine.lazy import backend
from engine.lazy import numpy as np

RegularizerName = Literal["l1", "l2", "l1_l2", "l1l2"]


class RegularizerConfig(SpecConfig):
    """The map form: `{type: l2, l2: 0.0001}`."""

    type: RegularizerName
    l1: float | None = Field(default=None, ge=0)
    l2: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _only_own_factor(self) -> RegularizerConfig:
        unused = {"l1": "l2", "l2": "l1"}.get(self.type)
        if unused is not None and unused in self.model_fields_set:
            raise ValueError(f"{unused} does not apply to {self.type}; use l1_l2 for both")
        return self

    def __call__(self, x: Any) -> Any:
        """The penalty for weight `x`, as a Keras regularizer object computes it."""
        from engine.tensor import Tensor, as_tensor

        penalty = _from_config(self).penalty(as_tensor(x).data)
        return Tensor(np.asarray(penalty, dtype=as_tensor(x).data.dtype))


class L1(RegularizerConfig):
    """Keras's `regularizers.L1(l1=0.01)`: penalty = l1 * sum(|w|)."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(type="l1", l1=l1)


class L2(RegularizerConfig):
    """Keras's `regularizers.L2(l2=0.01)`: penalty = l2 * sum(w**2)."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(type="l2", l2=l2)


class L1L2(RegularizerConfig):
    """Keras's `regularizers.L1L2(l1=0.0, l2=0.0)`: both penalties."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        super().__init__(type="l1_l2", l1=l1, l2=l2)


l1, l2, l1_l2 = L1, L2, L1L2  # Keras's lower-case aliases


RegularizerSpec = Annotated[RegularizerName | RegularizerConfig, Field(union_mode="left_to_right")]


@dataclass(frozen=True)
class Regularizer:
    """penalty = l1 * sum(|w|) + l2 * sum(w**2)."""

    l1: float = 0.0
    l2: float = 0.0

    def penalty(self, w: Any) -> float:
        """The amount added to the loss for weight `w`."""
        xp = backend.backend_of(w).xp
        total = 0.0
        if self.l1:
            total += self.l1 * float(xp.abs(w).sum())
        if self.l2:
            total += self.l2 * float((w * w).sum())
        return total

    def grad(self, w: Any) -> Any:
        """d penalty / d w (the L1 term uses sign(w), 0 at 0, as autodiff of |w| does)."""
        xp = backend.backend_of(w).xp
        g = xp.zeros_like(w)
        if self.l1:
            g += self.l1 * xp.sign(w)
        if self.l2:
            g += (2.0 * self.l2) * w
        return g


def get(spec: RegularizerSpec | str | dict[str, Any] | Regularizer | None) -> Regularizer | None:
    """Resolve a name or config map to a Regularizer (None stays None)."""
    if spec is None or isinstance(spec, Regularizer):
        return spec
    if isinstance(spec, dict):
        return _from_config(RegularizerConfig(**spec))
    if isinstance(spec, str):
        return _from_config(RegularizerConfig(type=spec), bare=True)  # type: ignore[arg-type]
    return _from_config(spec)


def _from_config(spec: RegularizerConfig, bare: bool = False) -> Regularizer:
    kind = "l1_l2" if spec.type == "l1l2" else spec.type
    if kind == "l1":
        return Regularizer(l1=0.01 if spec.l1 is None else spec.l1)
    if kind == "l2":
        return Regularizer(l2=0.01 if spec.l2 is None else spec.l2)
    if bare:
        return Regularizer(l1=0.01, l2=0.01)
    return Regularizer(l1=spec.l1 or 0.0, l2=spec.l2 or 0.0)


def serialize(spec: Any) -> Any:
    """The spec form of a regularizer spec (a name stays a name)."""
    return spec.model_dump(exclude_none=True) if isinstance(spec, BaseModel) else spec
