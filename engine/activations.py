"""Activation functions as fused forward/backward pairs on backend arrays, with Keras's formulas.

Layers apply an activation after their main computation and call `backward` with the saved
pre-activation `x` and output `y`; whichever of the two a formula needs is used. The spec names
them as Keras does: a name (`relu`) or a map with arguments (`{type: leaky_relu,
negative_slope: 0.1}`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.lazy import backend, native, relu_kernels

Array = Any

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _xp(x: Array) -> Any:
    return backend.backend_of(x).xp


def erf(x: Array) -> Array:
    """Error function to float32 precision (Abramowitz and Stegun 7.1.26, |error| < 1.5e-7)."""
    xp = _xp(x)
    sign = xp.sign(x)
    a = xp.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return (sign * (1.0 - poly * xp.exp(-a * a))).astype(x.dtype, copy=False)


def _sigmoid(x: Array) -> Array:
    xp = _xp(x)
    # exp of a non-positive number only: never overflows
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _softplus(x: Array) -> Array:
    xp = _xp(x)
    return (xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)


def _softmax(x: Array, axis: int = -1) -> Array:
    xp = _xp(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _softmax_grad(y: Array, dy: Array, axis: int = -1) -> Array:
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


@dataclass(frozen=True)
class Activation:
    """`forward(x, **args) -> y`; `backward(x, y, dy, **args) -> dx`."""

    name: str
    forward: Callable[..., Array]
    backward: Callable[..., Array]
    args: dict[str, Any] = field(default_factory=dict)

    def __call__(self, x: Array) -> Array:
        return self.forward(x, **self.args)

    def grad(self, x: Array, y: Array, dy: Array) -> Array:
        return self.backward(x, y, dy, **self.args)


def _gelu(x: Array, approximate: bool = False) -> Array:
    xp = _xp(x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        return (0.5 * x * (1.0 + xp.tanh(c * (x + 0.044715 * x**3)))).astype(x.dtype, copy=False)
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)


def _gelu_grad(x: Array, y: Array, dy: Array, approximate: bool = False) -> Array:
    xp = _xp(x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        inner = c * (x + 0.044715 * x**3)
        th = xp.tanh(inner)
        d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * c * (1.0 + 3 * 0.044715 * x * x)
        return (dy * d).astype(x.dtype, copy=False)
    cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return (dy * (cdf + x * pdf)).astype(x.dtype, copy=False)


def _relu(
    x: Array, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0
) -> Array:
    xp = _xp(x)
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return xp.maximum(x, 0)
    # Keras: x above the threshold (strictly), negative_slope * (x - threshold) up to it
    y = xp.where(x > threshold, x, negative_slope * (x - threshold))
    if max_value is not None:
        y = xp.minimum(y, max_value)
    return y.astype(x.dtype, copy=False)


def _relu_grad(
    x: Array,
    y: Array,
    dy: Array,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
) -> Array:
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        # Keras's gradient is 0 at x == 0; a boolean mask keeps it float32 and branch-free,
        # and the compiled kernel makes the mask and the product one pass
        fused = native.relu_grad(x, dy)
        return dy * (x > 0) if fused is None else fused
    xp = _xp(x)
    slope = xp.where(x > threshold, 1.0, negative_slope)
    if max_value is not None:
        slope = xp.where(x >= max_value, 0.0, slope)
    return (dy * slope).astype(dy.dtype, copy=False)


def relu_grad_of_output(y: Array, dy: Array) -> Array:
    """A plain ReLU's gradient read from its output y (y > 0 exactly where the input was), on
    both cores when the compiled pass applies: the gradient a ReLU fused into the layer before
    it hands back (`engine/train/fusion.py`), bit for bit the ReLU's own."""
    fused = relu_kernels.relu_grad(y, dy)
    return _relu_grad(y, y, dy) if fused is None else fused


def is_plain_relu(activation: Activation) -> bool:
    """Whether an activation is `relu` without arguments: maximum(x, 0)."""
    return activation.name == "relu" and not activation.args


def _elu(x: Array, alpha: float = 1.0) -> Array:
    xp = _xp(x)
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)


def _elu_grad(x: Array, y: Array, dy: Array, alpha: float = 1.0) -> Array:
    xp = _xp(x)
    return (dy * xp.where(x > 0, 1.0, y + alpha)).astype(dy.dtype, copy=False)


def _selu(x: Array) -> Array:
    return (SELU_SCALE * _elu(x, SELU_ALPHA)).astype(x.dtype, copy=False)


def _selu_grad(x: Array, y: Array, dy: Array) -> Array:
    xp = _xp(x)
    d = xp.where(x > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA)
    return (dy * d).astype(dy.dtype, copy=False)


def _hard_sigmoid(x: Array) -> Array:
    xp = _xp(x)
    return xp.clip(x / 6.0 + 0.5, 0.0, 1.0).astype(x.dtype, copy=False)


def _hard_sigmoid_grad(x: Array, y: Array, dy: Array) -> Array:
    xp = _xp(x)
    return (dy * xp.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)).astype(dy.dtype, copy=False)


def _silu_grad(x: Array, y: Array, dy: Array) -> Array:
    s = _sigmoid(x)
    return dy * (s + x * s * (1.0 - s))


def _log_softmax(x: Array, axis: int = -1) -> Array:
    xp = _xp(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _log_softmax_grad(x: Array, y: Array, dy: Array, axis: int = -1) -> Array:
    xp = _xp(x)
    return dy - xp.exp(y) * dy.sum(axis=axis, keepdims=True)


_TABLE: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("linear", lambda x: x, lambda x, y, dy: dy),
        Activation("relu", _relu, _relu_grad),
        Activation("sigmoid", _sigmoid, lambda x, y, dy: dy * y * (1.0 - y)),
        Activation("tanh", lambda x: _xp(x).tanh(x), lambda x, y, dy: dy * (1.0 - y * y)),
        Activation("softmax", _softmax, lambda x, y, dy, axis=-1: _softmax_grad(y, dy, axis)),
        Activation("log_softmax", _log_softmax, _log_softmax_grad),
        Activation("elu", _elu, _elu_grad),
        Activation("selu", _selu, _selu_grad),
        Activation("gelu", _gelu, _gelu_grad),
        Activation(
            "leaky_relu",
            lambda x, negative_slope=0.2: _relu(x, negative_slope),
            lambda x, y, dy, negative_slope=0.2: _relu_grad(x, y, dy, negative_slope),
        ),
        Activation(
            "relu6",
            lambda x: _relu(x, 0.0, 6.0),
            lambda x, y, dy: _relu_grad(x, y, dy, 0.0, 6.0),
        ),
        Activation("softplus", _softplus, lambda x, y, dy: dy * _sigmoid(x)),
        Activation(
            "softsign",
            lambda x: x / (1.0 + _xp(x).abs(x)),
            lambda x, y, dy: dy / (1.0 + _xp(x).abs(x)) ** 2,
        ),
        Activation("silu", lambda x: x * _sigmoid(x), _silu_grad),
        Activation("hard_sigmoid", _hard_sigmoid, _hard_sigmoid_grad),
        Activation("exponential", lambda x: _xp(x).exp(x), lambda x, y, dy: dy * y),
    ]
}
_ALIASES = {"swish": "silu", None: "linear"}

ActivationName = Literal[
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "elu",
    "selu",
    "gelu",
    "leaky_relu",
    "relu6",
    "softplus",
    "softsign",
    "silu",
    "swish",
    "hard_sigmoid",
    "exponential",
]


class ActivationConfig(BaseModel):
    """The map form: `{type: leaky_relu, negative_slope: 0.1}`."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    type: ActivationName
    negative_slope: float | None = None
    alpha: float | None = None
    max_value: float | None = None
    threshold: float | None = None
    axis: int | None = None
    approximate: bool | None = None


ActivationSpec = Annotated[
    ActivationName | ActivationConfig | None, Field(union_mode="left_to_right")
]


def names() -> list[str]:
    """Every activation name the spec accepts."""
    return sorted([*_TABLE, "swish"])


def get(spec: ActivationSpec | str | Activation) -> Activation:
    """Resolve a name, a config map or an Activation to an Activation."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, ActivationConfig):
        base = _TABLE[_ALIASES.get(spec.type, spec.type)]
        args = spec.model_dump(exclude={"type"}, exclude_none=True)
        return Activation(base.name, base.forward, base.backward, args)
    if isinstance(spec, dict):
        return get(ActivationConfig(**spec))
    key = _ALIASES.get(spec, spec)
    if key not in _TABLE:
        raise ValueError(f"unknown activation {spec!r}; expected one of {', '.join(names())}")
    return _TABLE[key]


def serialize(spec: ActivationSpec) -> Any:
    """The config form of an activation: its name, or its map when it has arguments."""
    if isinstance(spec, ActivationConfig):
        return spec.model_dump(exclude_none=True)
    return spec if spec is not None else "linear"
