"""EinsumDense: Keras 3's dense layer written as an einsum of the input and a kernel.

`y = activation(einsum(equation, x, kernel) + bias)`. The equation takes Keras's three forms:
`ab,bc->ac`, `...b,bc->...c` (leading axes elided) and `ab...,bc->ac...` (trailing). The
kernel's axes are named by the equation: an axis shared with the input takes the input's size,
one shared with the output the size given in `output_shape` (without the batch; None for an
axis that is the input's). `bias_axes` names the output axes the bias varies along; the bias
spans the output from the first of them to the end, 1 elsewhere. The kernel is initialized as
the (input units, output units) matrix it multiplies as, as Keras does.
Example: `EinsumDense("abc,cde->abde", output_shape=(None, 4, 8), bias_axes="de")` on
(None, 10, 16) gives (None, 10, 4, 8) with 16*4*8 + 4*8 = 544 parameters.
MultiHeadAttention's four projections are EinsumDense kernels of this kind.
"""

from __future__ import annotations

import functools
import math
import re
import string
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import PositiveInt, field_validator

from engine import activations
from engine.activations import ActivationSpec
from engine.constraints import ConstraintSpec
from engine.initializers import InitializerSpec
from engine.initializers import get as get_initializer
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
from engine.lazy import backend
from engine.regularizers import RegularizerSpec

if TYPE_CHECKING:
    import numpy as np


_FORMS = (
    (re.compile(r"^([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$"), None),
    (re.compile(r"^\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)$"), "left"),
    (re.compile(r"^([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\.$"), "right"),
)


def matrix_initializer(spec: Any, rows: int) -> Any:
    """Initialize a kernel as the (rows, rest) matrix of its input and output units, so that
    fan-in and fan-out count those units, as Keras's EinsumDense does."""
    init = get_initializer(spec)

    def as_matrix(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
        return init((rows, math.prod(shape) // rows), rng, dtype).reshape(shape)

    return as_matrix


@dataclass(frozen=True)
class Plan:
    """An equation resolved for one input shape: explicit subscripts and every shape."""

    x: str
    w: str
    y: str
    kernel: tuple[int, ...]
    bias: tuple[int, ...] | None
    output: tuple[int | None, ...]
    input_units: int


def _split(equation: str) -> tuple[str, str, str, str | None]:
    for pattern, elided in _FORMS:
        match = pattern.match(equation.replace(" ", ""))
        if match:
            x, w, y = match.groups()
            return x, w, y, elided
    raise ValueError(
        f"equation {equation!r} must read 'ab,bc->ac', '...b,bc->...c' or 'ab...,bc->ac...'"
    )


@functools.lru_cache(maxsize=256)
def plan(
    equation: str, bias_axes: str | None, input_shape: tuple[Any, ...], output_shape: Any
) -> Plan:
    """Kernel, bias and output shapes of `equation` on `input_shape` (Keras's analysis);
    memoized, as every forward step asks again for the same shape."""
    x, w, y, elided = _split(equation)
    extra = len(input_shape) - len(x)
    if extra < 0 or (extra and elided is None):
        raise ShapeError(
            f"equation {equation!r} names {len(x)} input axes; the input {tuple(input_shape)} "
            f"has {len(input_shape)}",
            field="equation",
        )
    spare = [c for c in string.ascii_letters if c not in x + w + y][:extra]
    dots = "".join(spare)
    if elided == "left":
        x, y = dots + x, dots + y
    elif elided == "right":
        x, y = x + dots, y + dots
    given = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    if elided == "left":  # the elided axes include the batch
        given = [*input_shape[1:extra], *given]
    elif elided == "right":
        given = [*given, *input_shape[len(input_shape) - extra :]]
    out: list[int | None] = [input_shape[0], *given]
    if len(out) != len(y):
        raise ShapeError(
            f"output_shape {output_shape!r} gives {len(out) - 1} axes; the equation's output "
            f"{y!r} has {len(y) - 1} besides the batch",
            field="output_shape",
        )
    sizes = dict(zip(x, input_shape, strict=True))
    for i, c in enumerate(y):
        if c in sizes:
            if out[i] is not None and sizes[c] is not None and out[i] != sizes[c]:
                raise ShapeError(
                    f"axis {c!r} is {sizes[c]} in the input but {out[i]} in output_shape",
                    field="output_shape",
                )
            out[i] = sizes[c] if out[i] is None else out[i]
        elif c not in w:
            raise ShapeError(f"output axis {c!r} is neither in the input nor in the kernel")
    out_sizes = dict(zip(y, out, strict=True))
    kernel = []
    input_units = 1
    for c in w:
        size = out_sizes.get(c) if c in out_sizes else sizes.get(c)
        if c not in out_sizes and c not in sizes:
            raise ShapeError(f"kernel axis {c!r} is neither in the input nor in the output")
        if size is None:
            raise ShapeError(f"kernel axis {c!r} needs a known size", field="output_shape")
        kernel.append(int(size))
        if c not in out_sizes:
            input_units *= int(size)
    return Plan(x, w, y, tuple(kernel), _bias(bias_axes, y, out), tuple(out), input_units)


def _bias(bias_axes: str | None, y: str, out: list[int | None]) -> tuple[int, ...] | None:
    if not bias_axes:
        return None
    missing = [c for c in bias_axes if c not in y]
    if missing:
        raise ShapeError(f"bias_axes {missing} are not output axes of {y!r}", field="bias_axes")
    first = min(y.index(c) for c in bias_axes)
    shape = [int(out[i] or 1) if c in bias_axes else 1 for i, c in enumerate(y) if i >= first]
    return tuple(shape)


class EinsumDenseConfig(LayerConfig):
    type: Literal["EinsumDense"] = "EinsumDense"
    equation: str
    output_shape: PositiveInt | tuple[PositiveInt | None, ...]
    activation: ActivationSpec = None
    bias_axes: str | None = None
    kernel_initializer: InitializerSpec = "glorot_uniform"
    bias_initializer: InitializerSpec = "zeros"
    kernel_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    kernel_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None

    @field_validator("equation")
    @classmethod
    def _form(cls, value: str) -> str:
        _split(value)
        return value


@register
class EinsumDense(Layer):
    type_name = "EinsumDense"
    concurrent_inference = True
    config_class = EinsumDenseConfig
    positional = ("equation", "output_shape", "activation", "bias_axes")
    config: EinsumDenseConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activation = activations.get(self.config.activation)

    def _plan(self, input_shape: Any) -> Plan:
        c = self.config
        return plan(c.equation, c.bias_axes, tuple(input_shape), c.output_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self._plan(input_shape).output

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        p = self._plan(input_shape)
        init = matrix_initializer(c.kernel_initializer, p.input_units)
        specs = [replace(configured_weight(c, "kernel", p.kernel), initializer=init)]
        if p.bias is not None:
            specs.append(configured_weight(c, "bias", p.bias))
        return specs

    def flops(self, input_shape: Any) -> int:
        p = self._plan(input_shape)
        sizes = {
            **dict(zip(p.x, input_shape, strict=True)),
            **dict(zip(p.w, p.kernel, strict=True)),
        }
        labels = set(p.x + p.w)
        return 2 * math.prod(int(sizes[c] or 1) for c in labels if c != p.x[0])

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        p = self._plan((None, *inputs.shape[1:]))
        xp = backend.backend_of(inputs).xp
        z = xp.einsum(f"{p.x},{p.w}->{p.y}", inputs, params[0])
        if p.bias is not None:
            z = z + params[1]
        y = self.activation(z)
        return y, (inputs, z, y, p)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        x, z, y, p = cache
        xp = backend.backend_of(x).xp
        dz = self.activation.grad(z, y, grad_output)
        if grads[0] is not None:
            grads[0][...] = xp.einsum(f"{p.x},{p.y}->{p.w}", x, dz)
        if p.bias is not None and grads[1] is not None:
            lead = dz.ndim - len(p.bias)
            axes = tuple(range(lead)) + tuple(
                lead + i for i, n in enumerate(p.bias) if n == 1 and dz.shape[lead + i] != 1
            )
            grads[1][...] = dz.sum(axis=axes, keepdims=True).reshape(p.bias)
        if not ctx.need_input_grad:
            return None
        kept = "".join(c for c in p.x if c in p.y or c in p.w)
        dx = xp.einsum(f"{p.y},{p.w}->{kept}", dz, params[0])
        if kept != p.x:  # input axes summed away in the forward get the gradient broadcast
            dx = dx.reshape([x.shape[i] if c in kept else 1 for i, c in enumerate(p.x)])
            dx = xp.broadcast_to(dx, x.shape)
        return dx
