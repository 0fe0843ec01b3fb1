"""Element-wise ops with their gradients: arithmetic, math, activations, comparisons, where, clip.

Every op broadcasts as NumPy does; the tape un-broadcasts gradients back to each input's shape.
Activations reuse the fused forward/backward pairs of `engine.activations`, so each formula is
written once for layers and ops alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine import activations as _activations
from engine.autodiff import record
from engine.dtypes import as_dtype
from engine.ops._core import Array, floating, numeric, pair, tensor
from engine.tensor import Tensor

BinaryForward = Callable[[Any, Array, Array], Array]
BinaryGrad = Callable[[Any, Array, Array, Array, Array], tuple[Array | None, Array | None]]
UnaryForward = Callable[[Any, Array], Array]
UnaryGrad = Callable[[Any, Array, Array, Array], Array | None]


def _binary(name: str, forward: BinaryForward, grad: BinaryGrad) -> Callable[[Any, Any], Tensor]:
    def op(a: Any, b: Any) -> Tensor:
        ta, tb = pair(a, b, name)
        numeric(ta, name)
        xp = ta.backend.xp
        x, w = ta.data, tb.data
        y = Tensor(forward(xp, x, w))
        return record(y, (ta, tb), lambda g: grad(xp, x, w, y.data, g))

    op.__name__ = name
    op.__doc__ = f"`{name}(a, b)` element-wise with broadcasting, differentiable in both."
    return op


def _unary(
    name: str, forward: UnaryForward, grad: UnaryGrad, check: Callable[[Tensor, str], Tensor]
) -> Callable[[Any], Tensor]:
    def op(x: Any) -> Tensor:
        t = check(tensor(x), name)
        xp = t.backend.xp
        data = t.data
        y = Tensor(forward(xp, data))
        return record(y, (t,), lambda g: (grad(xp, data, y.data, g),))

    op.__name__ = name
    op.__doc__ = f"`{name}(x)` element-wise, with its gradient."
    return op


def _power_grad(xp: Any, a: Array, b: Array, y: Array, g: Array) -> tuple[Array, Array]:
    safe_log = xp.log(xp.where(a > 0, a, 1))
    return g * b * a ** (b - 1), g * y * safe_log


def _mod_grad(xp: Any, a: Array, b: Array, y: Array, g: Array) -> tuple[Array, Array]:
    return g, -g * xp.floor_divide(a, b)


add = _binary("add", lambda xp, a, b: a + b, lambda xp, a, b, y, g: (g, g))
subtract = _binary("subtract", lambda xp, a, b: a - b, lambda xp, a, b, y, g: (g, -g))
multiply = _binary("multiply", lambda xp, a, b: a * b, lambda xp, a, b, y, g: (g * b, g * a))
divide = _binary("divide", lambda xp, a, b: a / b, lambda xp, a, b, y, g: (g / b, -g * y / b))
floordiv = _binary("floordiv", lambda xp, a, b: a // b, lambda xp, a, b, y, g: (None, None))
mod = _binary("mod", lambda xp, a, b: a % b, _mod_grad)
power = _binary("power", lambda xp, a, b: a**b, _power_grad)
maximum = _binary(
    "maximum", lambda xp, a, b: xp.maximum(a, b), lambda xp, a, b, y, g: (g * (a >= b), g * (a < b))
)
minimum = _binary(
    "minimum", lambda xp, a, b: xp.minimum(a, b), lambda xp, a, b, y, g: (g * (a <= b), g * (a > b))
)
squared_difference = _binary(
    "squared_difference",
    lambda xp, a, b: (a - b) * (a - b),
    lambda xp, a, b, y, g: (2 * g * (a - b), -2 * g * (a - b)),
)

negative = _unary("negative", lambda xp, x: -x, lambda xp, x, y, g: -g, numeric)
abs = _unary("abs", lambda xp, x: xp.abs(x), lambda xp, x, y, g: g * xp.sign(x), numeric)  # noqa: A001
square = _unary("square", lambda xp, x: x * x, lambda xp, x, y, g: 2 * g * x, numeric)
sign = _unary("sign", lambda xp, x: xp.sign(x), lambda xp, x, y, g: None, numeric)
exp = _unary("exp", lambda xp, x: xp.exp(x), lambda xp, x, y, g: g * y, floating)
expm1 = _unary("expm1", lambda xp, x: xp.expm1(x), lambda xp, x, y, g: g * (y + 1), floating)
log = _unary("log", lambda xp, x: xp.log(x), lambda xp, x, y, g: g / x, floating)
log1p = _unary("log1p", lambda xp, x: xp.log1p(x), lambda xp, x, y, g: g / (1 + x), floating)
sqrt = _unary("sqrt", lambda xp, x: xp.sqrt(x), lambda xp, x, y, g: g / (2 * y), floating)
rsqrt = _unary(
    "rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda xp, x, y, g: -0.5 * g * y * y * y, floating
)
reciprocal = _unary("reciprocal", lambda xp, x: 1 / x, lambda xp, x, y, g: -g * y * y, floating)
sin = _unary("sin", lambda xp, x: xp.sin(x), lambda xp, x, y, g: g * xp.cos(x), floating)
cos = _unary("cos", lambda xp, x: xp.cos(x), lambda xp, x, y, g: -g * xp.sin(x), floating)
floor = _unary("floor", lambda xp, x: xp.floor(x), lambda xp, x, y, g: None, floating)
ceil = _unary("ceil", lambda xp, x: xp.ceil(x), lambda xp, x, y, g: None, floating)
round = _unary("round", lambda xp, x: xp.round(x), lambda xp, x, y, g: None, floating)  # noqa: A001


def activation(name: str, **args: Any) -> Callable[[Any], Tensor]:
    """An op from a named activation (docs/spec-format.md) with its arguments bound."""
    base = _activations.get(name)
    act = _activations.Activation(base.name, base.forward, base.backward, args)

    def op(x: Any) -> Tensor:
        t = floating(tensor(x), name)
        data = t.data
        y = Tensor(act(data))
        return record(y, (t,), lambda g: (act.grad(data, y.data, g),))

    op.__name__ = name
    return op


def _activation_op(name: str) -> Callable[..., Tensor]:
    default = activation(name)

    def op(x: Any, **args: Any) -> Tensor:
        return activation(name, **args)(x) if args else default(x)

    op.__name__ = name
    op.__doc__ = f"The `{name}` activation (Keras's formula), with its gradient."
    return op


relu = _activation_op("relu")
sigmoid = _activation_op("sigmoid")
tanh = _activation_op("tanh")
elu = _activation_op("elu")
selu = _activation_op("selu")
softplus = _activation_op("softplus")
softsign = _activation_op("softsign")
silu = _activation_op("silu")
hard_sigmoid = _activation_op("hard_sigmoid")
relu6 = _activation_op("relu6")


def gelu(x: Any, approximate: bool = False) -> Tensor:
    """GELU, exact (erf) by default as in Keras 3, or the tanh approximation."""
    return activation("gelu", approximate=approximate)(x)


def leaky_relu(x: Any, alpha: float = 0.2) -> Tensor:
    """`x if x >= 0 else alpha * x` (TensorFlow's and Keras's default slope 0.2)."""
    return activation("leaky_relu", negative_slope=alpha)(x)


def _compare(name: str, forward: BinaryForward, strings: bool = False) -> Callable[..., Tensor]:
    def op(a: Any, b: Any) -> Tensor:
        ta, tb = pair(a, b, name)
        if not strings:
            numeric(ta, name)
        return Tensor(forward(ta.backend.xp, ta.data, tb.data))

    op.__name__ = name
    op.__doc__ = f"`{name}(a, b)` element-wise as a bool tensor; it has no gradient."
    return op


equal = _compare("equal", lambda xp, a, b: a == b, strings=True)
not_equal = _compare("not_equal", lambda xp, a, b: a != b, strings=True)
less = _compare("less", lambda xp, a, b: a < b)
less_equal = _compare("less_equal", lambda xp, a, b: a <= b)
greater = _compare("greater", lambda xp, a, b: a > b)
greater_equal = _compare("greater_equal", lambda xp, a, b: a >= b)


def _boolean(t: Tensor, op: str) -> Tensor:
    if t.data.dtype != bool:
        raise TypeError(f"{op} takes bool tensors; got {t.dtype.name}")
    return t


def _logical(name: str, forward: BinaryForward) -> Callable[..., Tensor]:
    def op(a: Any, b: Any) -> Tensor:
        ta, tb = pair(a, b, name)
        _boolean(ta, name)
        return Tensor(forward(ta.backend.xp, ta.data, tb.data))

    op.__name__ = name
    op.__doc__ = f"`{name}(a, b)` on bool tensors."
    return op


logical_and = _logical("logical_and", lambda xp, a, b: a & b)
logical_or = _logical("logical_or", lambda xp, a, b: a | b)
logical_xor = _logical("logical_xor", lambda xp, a, b: a ^ b)


def logical_not(x: Any) -> Tensor:
    """Element-wise NOT of a bool tensor."""
    t = _boolean(tensor(x), "logical_not")
    return Tensor(~t.data)


def where(condition: Any, x: Any = None, y: Any = None) -> Tensor:
    """`x` where `condition` holds, else `y` (broadcast); without x and y, the true coordinates.

    Example: `where([True, False], 1.0, 2.0)` -> [1., 2.]. The coordinates form is int64
    (n_true, rank), as in TensorFlow.
    """
    c = _boolean(tensor(condition), "where")
    xp = c.backend.xp
    if x is None and y is None:
        return Tensor(xp.argwhere(c.data).astype("int64"))
    if x is None or y is None:
        raise ValueError("where needs both x and y, or neither")
    tx, ty = pair(x, y, "where")
    cond = c.data
    out = Tensor(xp.where(cond, tx.data, ty.data))
    return record(out, (c, tx, ty), lambda g: (None, xp.where(cond, g, 0), xp.where(cond, 0, g)))


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any) -> Tensor:
    """Clamp to [min, max]; the gradient flows to whichever of the three is selected."""
    x = numeric(tensor(t), "clip_by_value")
    _, lo = pair(x, clip_value_min, "clip_by_value")
    _, hi = pair(x, clip_value_max, "clip_by_value")
    xp = x.backend.xp
    data, low, high = x.data, lo.data, hi.data
    out = Tensor(xp.minimum(xp.maximum(data, low), high))

    def vjp(g: Array) -> tuple[Array, Array, Array]:
        below, above = data < low, data > high
        return g * ~(below | above), g * (below & ~above), g * above

    return record(out, (x, lo, hi), vjp)


def cast(x: Any, dtype: Any) -> Tensor:
    """The same values as another dtype; the gradient flows between floating dtypes only."""
    t = tensor(x)
    target = as_dtype(dtype)
    if target == t.dtype:
        return t
    if target.is_string or t.dtype.is_string:
        raise TypeError(f"cannot cast {t.dtype.name} to {target.name}")
    source = t.data.dtype
    y = Tensor(t.data.astype(target.np_dtype))
    if not target.is_floating:
        return y
    return record(y, (t,), lambda g: (g.astype(source),))
