"""Merge layers of Keras 3: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Element-wise merges take two or more inputs whose non-batch axes broadcast (equal, 1 or None)
and give the broadcast shape; their masks combine with logical and. Concatenate joins along
`axis`; Dot is Keras's batch_dot over one axis of each input. No weights.
Example: `Add()([a, b])` on two (None, 16) inputs gives (None, 16).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import model_validator

from engine import activations
from engine.layers.base import Array, CallContext, Layer, LayerConfig, ShapeError
from engine.layers.registry import register
from engine.lazy import autodiff, backend, relu_kernels

NORM_EPSILON = 1e-12
_RELU = activations.get("relu")


def _and_masks(masks: Any) -> Any:
    """Logical and of the masks that are present (None when none is)."""
    present = [m for m in (masks or []) if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = out & m
    return out


def _check_list(layer: Layer, input_shape: Any, exactly: int | None = None) -> list[Any]:
    several = isinstance(input_shape, (list, tuple)) and all(
        isinstance(s, (list, tuple)) for s in input_shape
    )
    shapes = list(input_shape) if several and input_shape else None
    wanted = f"exactly {exactly}" if exactly else "at least 2"
    if shapes is None or len(shapes) < 2 or (exactly is not None and len(shapes) != exactly):
        got = "one input" if shapes is None else f"{len(shapes)} inputs"
        raise ShapeError(
            f"{layer.type_name} merges {wanted} inputs; got {got}",
            field="inputs",
            hint="list the entries to merge: inputs: [a, b]",
        )
    return [tuple(s) for s in shapes]


def _broadcast(layer: Layer, shapes: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    rank = max(len(s) for s in shapes)
    if any(len(s) != rank for s in shapes):
        raise ShapeError(
            f"{layer.type_name} needs inputs of one rank; got {shapes}",
            hint="add a Reshape so every input has the same number of axes",
        )
    out: list[Any] = [None]
    for axis in range(1, rank):
        sizes = {s[axis] for s in shapes} - {1}
        known = sizes - {None}
        if len(known) > 1:
            # In input order, as the user listed them: (None, 16) and (None, 8) say [16, 8].
            listed = [s[axis] for s in shapes if s[axis] not in (None, 1)]
            raise ShapeError(
                f"{layer.type_name} cannot combine shapes {shapes}: axis {axis} has sizes {listed}",
                hint="give the inputs equal shapes (or 1 where one should broadcast)",
            )
        out.append(known.pop() if known else (None if None in sizes else 1))
    return tuple(out)


@dataclass(frozen=True)
class ElementwiseOp:
    """forward(xp, xs) -> y; backward(xp, xs, y, dy) -> one broadcast-shaped gradient per x.

    `then_relu(xs)`, where the op has one, is relu(forward(xs)) in a single compiled pass, or
    None where that pass does not apply; the layer then composes forward and the ReLU.
    """

    forward: Callable[[Any, list[Array]], Array]
    backward: Callable[[Any, list[Array], Array, Array], list[Array]]
    exactly: int | None = None
    then_relu: Callable[[list[Array]], Array | None] | None = None


def _product_except(xs: list[Array], skip: int, start: Array) -> Array:
    out = start
    for j, x in enumerate(xs):
        if j != skip:
            out = out * x
    return out


def _extreme(pick: str) -> ElementwiseOp:
    """Maximum or Minimum: the gradient goes to the first input holding the extreme."""

    def forward(xp: Any, xs: list[Array]) -> Array:
        y = xs[0]
        for x in xs[1:]:
            y = getattr(xp, pick)(y, x)
        return y

    def backward(xp: Any, xs: list[Array], y: Array, dy: Array) -> list[Array]:
        taken = xp.zeros(y.shape, dtype=bool)
        out = []
        for x in xs:
            hit = (x == y) & ~taken
            taken |= hit
            out.append(dy * hit)
        return out

    return ElementwiseOp(forward, backward)


def _sum(xp: Any, xs: list[Array]) -> Array:
    y = xs[0] + xs[1]
    for x in xs[2:]:
        y += x
    return y


ELEMENTWISE: dict[str, ElementwiseOp] = {
    "Add": ElementwiseOp(
        _sum,
        lambda xp, xs, y, dy: [dy] * len(xs),
        then_relu=lambda xs: relu_kernels.add_relu(*xs) if len(xs) == 2 else None,
    ),
    "Subtract": ElementwiseOp(lambda xp, xs: xs[0] - xs[1], lambda xp, xs, y, dy: [dy, -dy], 2),
    "Multiply": ElementwiseOp(
        lambda xp, xs: _product_except(xs, -1, 1),
        lambda xp, xs, y, dy: [_product_except(xs, i, dy) for i in range(len(xs))],
    ),
    "Average": ElementwiseOp(
        lambda xp, xs: _sum(xp, xs) / len(xs),
        lambda xp, xs, y, dy: [dy / len(xs)] * len(xs),
    ),
    "Maximum": _extreme("maximum"),
    "Minimum": _extreme("minimum"),
}


class Merge(Layer):
    """Element-wise merges; the type name picks the op from ELEMENTWISE."""

    concurrent_inference = True

    multi_input = True
    supports_masking = True
    # output_mask only combines the inputs' masks: without any, the planner skips it
    mask_from_inputs_only = True

    @property
    def op(self) -> ElementwiseOp:
        return ELEMENTWISE[self.type_name]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return _broadcast(self, _check_list(self, input_shape, self.op.exactly))

    def flops(self, input_shape: Any) -> int:
        out = self.compute_output_shape(input_shape)
        return (len(input_shape) - 1) * math.prod(d or 1 for d in out[1:])

    def forward(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Array, Any]:
        xs = list(inputs)
        y = self.op.forward(backend.backend_of(xs[0]).xp, xs)
        return y, (xs, y, False)

    def forward_relu(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Array, Any]:
        """relu(forward(xs)), one compiled pass where the op has it (`engine/train/fusion.py`);
        `backward` then takes the gradient of the ReLU's output."""
        xs = list(inputs)
        assert self.op.then_relu is not None
        y = self.op.then_relu(xs)
        if y is None:
            y = _RELU(self.op.forward(backend.backend_of(xs[0]).xp, xs))
        return y, (xs, y, True)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        xs, y, relu = cache
        if not ctx.need_input_grad:
            return [None] * len(xs)
        if relu:
            grad_output = activations.relu_grad_of_output(y, grad_output)
        full = self.op.backward(backend.backend_of(grad_output).xp, xs, y, grad_output)
        return [autodiff.unbroadcast(g, tuple(x.shape)) for g, x in zip(full, xs, strict=True)]

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return _and_masks(mask)


def _merge_config(name: str) -> type[LayerConfig]:
    annotations = {"type": Literal[name]}
    return type(f"{name}Config", (LayerConfig,), {"__annotations__": annotations, "type": name})


def _register_merge(name: str) -> type[Merge]:
    doc = f"{name}: the element-wise merge of two or more broadcastable inputs."
    attrs = {"type_name": name, "config_class": _merge_config(name), "__doc__": doc}
    return register(type(name, (Merge,), attrs))


Add = _register_merge("Add")
Subtract = _register_merge("Subtract")
Multiply = _register_merge("Multiply")
Average = _register_merge("Average")
Maximum = _register_merge("Maximum")
Minimum = _register_merge("Minimum")


class ConcatenateConfig(LayerConfig):
    type: Literal["Concatenate"] = "Concatenate"
    axis: int = -1


@register
class Concatenate(Layer):
    """Join inputs along `axis` (default the last); the other axes must match.

    Example: (None, 3) and (None, 5) give (None, 8).
    """

    type_name = "Concatenate"
    concurrent_inference = True
    config_class = ConcatenateConfig
    positional = ("axis",)
    multi_input = True
    supports_masking = True
    mask_from_inputs_only = True
    config: ConcatenateConfig

    def _axis(self, rank: int) -> int:
        axis = self.config.axis % rank
        if axis == 0 or not -rank <= self.config.axis < rank:
            raise ShapeError(
                f"Concatenate axis {self.config.axis} is not a non-batch axis of a rank-{rank} "
                "input",
                field="axis",
            )
        return axis

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = _check_list(self, input_shape)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ShapeError(f"Concatenate needs inputs of one rank; got {shapes}")
        axis = self._axis(rank)
        out: list[Any] = [None]
        for i in range(1, rank):
            sizes = [s[i] for s in shapes]
            if i == axis:
                out.append(None if None in sizes else sum(sizes))
                continue
            known = {d for d in sizes if d is not None}
            if len(known) > 1:
                raise ShapeError(
                    f"Concatenate on axis {self.config.axis} needs the other axes to match; "
                    f"got {shapes}",
                    field="axis",
                    hint="pick the axis that differs, or Reshape the inputs",
                )
            out.append(known.pop() if known else None)
        return tuple(out)

    def forward(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Array, Any]:
        xs = list(inputs)
        axis = self._axis(xs[0].ndim)
        y = backend.backend_of(xs[0]).xp.concatenate(xs, axis=axis)
        return y, (axis, [x.shape[axis] for x in xs])

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        axis, sizes = cache
        if not ctx.need_input_grad:
            return [None] * len(sizes)
        edges = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        index = [slice(None)] * grad_output.ndim
        out = []
        for lo, hi in zip(edges, edges[1:], strict=False):
            index[axis] = slice(lo, hi)
            out.append(grad_output[tuple(index)])
        return out

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        """Masks cover every axis but the last: and them when joining features, else join them."""
        if mask is None or all(m is None for m in mask):
            return None
        arrays = list(inputs)
        rank = len(arrays[0].shape)
        axis = self._axis(rank)
        if axis == rank - 1:
            return _and_masks(mask)
        xp = backend.backend_of(arrays[0]).xp
        full = [
            xp.ones(x.shape[:-1], dtype=bool) if m is None else m
            for x, m in zip(arrays, mask, strict=True)
        ]
        return xp.concatenate(full, axis=axis)


class DotConfig(LayerConfig):
    type: Literal["Dot"] = "Dot"
    axes: int | tuple[int, int]
    normalize: bool = False

    @model_validator(mode="after")
    def _no_batch_axis(self) -> DotConfig:
        axes = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        if 0 in axes:
            raise ValueError("Dot axes count the batch as axis 0, which cannot be contracted")
        return self


@register
class Dot(Layer):
    """Keras's batch_dot: contract `axes[0]` of x with `axes[1]` of y, per sample.

    x (batch, *A) and y (batch, *B) give (batch, *A without the axis, *B without the axis), or
    (batch, 1) when nothing is left. With `normalize`, both are L2-normalized along the
    contracted axes first (cosine similarity). Example: `Dot(axes=1)` on two (None, 8) gives
    (None, 1).
    """

    type_name = "Dot"
    concurrent_inference = True
    config_class = DotConfig
    positional = ("axes", "normalize")
    multi_input = True
    config: DotConfig

    def _axes(self, rank_x: int, rank_y: int) -> tuple[int, int]:
        axes = self.config.axes
        ax, ay = (axes, axes) if isinstance(axes, int) else axes
        return ax % rank_x, ay % rank_y

    def compute_output_shape(self, input_shape: Any) -> Any:
        sx, sy = _check_list(self, input_shape, 2)
        ax, ay = self._axes(len(sx), len(sy))
        if ax == 0 or ay == 0:
            raise ShapeError("Dot axes cannot contract the batch axis", field="axes")
        if None not in (sx[ax], sy[ay]) and sx[ax] != sy[ay]:
            raise ShapeError(
                f"Dot contracts axis {ax} of {sx} ({sx[ax]}) with axis {ay} of {sy} "
                f"({sy[ay]}); the sizes must match",
                field="axes",
                hint="pick axes of equal size",
            )
        rest = [
            *(d for i, d in enumerate(sx) if i not in (0, ax)),
            *(d for i, d in enumerate(sy) if i not in (0, ay)),
        ]
        return (None, *(rest or [1]))

    def flops(self, input_shape: Any) -> int:
        out = self.compute_output_shape(input_shape)
        sx, sy = input_shape
        contracted = sx[self._axes(len(sx), len(sy))[0]] or 1
        return 2 * contracted * math.prod(d or 1 for d in out[1:])

    def forward(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Array, Any]:
        x, y = inputs
        xp = backend.backend_of(x).xp
        ax, ay = self._axes(x.ndim, y.ndim)
        norms = None
        if self.config.normalize:
            x, nx = _l2_normalize(xp, x, ax)
            y, ny = _l2_normalize(xp, y, ay)
            norms = (x, nx, y, ny)
        xm = xp.moveaxis(x, ax, -1)
        ym = xp.moveaxis(y, ay, 1)
        n, k = x.shape[0], x.shape[ax]
        xf = xm.reshape(n, -1, k)
        yf = ym.reshape(n, k, -1)
        z = xf @ yf
        out_shape = self.compute_output_shape([(None, *x.shape[1:]), (None, *y.shape[1:])])
        return z.reshape(n, *out_shape[1:]), (xf, yf, xm.shape, ym.shape, ax, ay, norms)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        if not ctx.need_input_grad:
            return [None, None]
        xf, yf, xm_shape, ym_shape, ax, ay, norms = cache
        xp = backend.backend_of(grad_output).xp
        dz = grad_output.reshape(xf.shape[0], xf.shape[1], yf.shape[2])
        dx = xp.moveaxis((dz @ yf.transpose(0, 2, 1)).reshape(xm_shape), -1, ax)
        dy = xp.moveaxis((xf.transpose(0, 2, 1) @ dz).reshape(ym_shape), 1, ay)
        if norms is not None:
            xn, nx, yn, ny = norms
            dx = _l2_normalize_grad(xp, xn, nx, dx, ax)
            dy = _l2_normalize_grad(xp, yn, ny, dy, ay)
        return [dx, dy]


def _l2_normalize(xp: Any, x: Array, axis: int) -> tuple[Array, Array]:
    """x / sqrt(max(sum(x^2), eps)) along `axis`, and that norm (Keras's normalize)."""
    norm = xp.sqrt(xp.maximum((x * x).sum(axis=axis, keepdims=True), NORM_EPSILON))
    return x / norm, norm


def _l2_normalize_grad(xp: Any, xn: Array, norm: Array, dxn: Array, axis: int) -> Array:
    """Where the norm was clipped to sqrt(eps) it is a constant, so only the scale remains."""
    clipped = norm <= math.sqrt(NORM_EPSILON)
    radial = xp.where(clipped, 0.0, xn * (dxn * xn).sum(axis=axis, keepdims=True))
    return (dxn - radial) / norm
