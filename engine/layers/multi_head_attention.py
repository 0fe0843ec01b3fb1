"""MultiHeadAttention: Keras 3's attention over `num_heads` heads, with its EinsumDense weights.

Called on `[query, value]`, `[query, value, key]` or `[query, value, key, attention_mask]`
(Keras's call order; key defaults to value). Shapes: query (B, *T, dq), value (B, *S, dv),
key (B, *S, dk) -> (B, *T, output_shape or dq). Weights, in Keras's order and layouts:
query/kernel (dq, heads, key_dim), query/bias (heads, key_dim), key/kernel (dk, heads,
key_dim), key/bias, value/kernel (dv, heads, value_dim), value/bias (heads, value_dim),
attention_output/kernel (heads, value_dim, *output_shape), attention_output/bias
(*output_shape). Example: `MultiHeadAttention(num_heads=2, key_dim=2)` on (None, 8, 16) self
attention has 3 * (16*2*2 + 2*2) + 2*2*16 + 16 = 284 parameters.

Attention runs over `attention_axes` (default: every axis between the batch and the features);
the other axes act as more batch. Masks as in Keras: the query's, value's and key's Keras masks
(padding), `attention_mask` (B, T, S) where true means "may attend", and `use_causal_mask`
(Keras's call argument, given in the spec entry) are and-ed; the output carries the query's
mask. `return_attention_scores` is available on the Python call (not in a spec graph).

Self-attention (one array as query, value and key, as many key and value heads as query heads)
projects the three as one product with the kernels side by side, and backward gives the input's
whole gradient in the query's slot (None in the others, which name the same array).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from engine.constraints import ConstraintSpec
from engine.initializers import InitializerSpec
from engine.layers.attention_call import call_attention
from engine.layers.base import (
    Array,
    CallContext,
    Layer,
    LayerConfig,
    ShapeError,
    WeightSpec,
    configured_weight,
)
from engine.layers.einsum_dense import matrix_initializer
from engine.layers.registry import register
from engine.lazy import attention_kernels, backend, gemm, workspace
from engine.lazy import numpy as np
from engine.regularizers import RegularizerSpec

PORTS = ("query", "value", "key", "attention_mask")
QKV = ("query", "key", "value")


class MultiHeadAttentionConfig(LayerConfig):
    type: Literal["MultiHeadAttention"] = "MultiHeadAttention"
    num_heads: PositiveInt
    key_dim: PositiveInt
    value_dim: PositiveInt | None = None
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    use_bias: bool = True
    output_shape: PositiveInt | tuple[PositiveInt, ...] | None = None
    attention_axes: int | tuple[int, ...] | None = None
    sliding_window: PositiveInt | None = None
    kernel_initializer: InitializerSpec = "glorot_uniform"
    bias_initializer: InitializerSpec = "zeros"
    kernel_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    kernel_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None
    seed: int | None = None
    # Keras's call argument; a spec entry is one call, so it is written there
    use_causal_mask: bool = False


@dataclass(frozen=True)
class HeadLayout:
    """How (B, *axes, heads, dim) becomes (B', heads, L, dim): the non-attention axes join
    the batch and the attention axes are flattened into one."""

    perm: tuple[int, ...]
    moved: tuple[int, ...]
    rows: int
    length: int
    attention_axes: int

    @classmethod
    def of(cls, shape: tuple[int, ...], attention: tuple[int, ...]) -> HeadLayout:
        n = len(shape) - 2
        others = [a for a in range(1, n) if a not in attention]
        perm = (0, *others, n, *attention, n + 1)
        moved = tuple(shape[p] for p in perm)
        rows = shape[0] * math.prod(shape[a] for a in others)
        return cls(perm, moved, rows, math.prod(shape[a] for a in attention), len(attention))

    def split(self, x: Array) -> Array:
        return x.transpose(self.perm).reshape(self.rows, x.shape[-2], self.length, x.shape[-1])

    def split_buffer(
        self, xp: Any, shape: tuple[int, ...], dtype: Any, ctx: CallContext, name: str
    ) -> tuple[Array, Array]:
        """A (B, *axes, heads, dim) buffer and its split view, for a product to write its
        (B', heads, L, dim) result straight into the unsplit layout; the view is None where
        splitting needs a copy (several attention axes among other axes). A planned step's
        buffer is kept for the next step (its forward and backward run once per step)."""
        if isinstance(ctx, workspace.PlannedContext):
            buffer = ctx.buffer(xp, name, shape, dtype)
        else:
            buffer = xp.empty(shape, dtype=dtype)
        view = self.split(buffer)
        return buffer, view if xp.shares_memory(view, buffer) else None

    def merge(self, x: Array) -> Array:
        inverse = [0] * len(self.perm)
        for i, p in enumerate(self.perm):
            inverse[p] = i
        moved = (*self.moved[:-1], x.shape[-1])
        return x.reshape(moved).transpose(inverse)


@register
class MultiHeadAttention(Layer):
    type_name = "MultiHeadAttention"
    concurrent_inference = True
    config_class = MultiHeadAttentionConfig
    positional: ClassVar[tuple[str, ...]] = ("num_heads", "key_dim")
    multi_input = True
    supports_masking = True
    call_ports = PORTS
    port_defaults = {"key": "value"}  # noqa: RUF012  (a class-level table, never mutated)
    config: MultiHeadAttentionConfig

    # ----- configuration and shapes -------------------------------------------------------
    def _dims(self) -> tuple[int, int, int, int]:
        """(query heads, key/value heads, key_dim, value_dim)."""
        c = self.config
        return c.num_heads, c.num_heads, c.key_dim, c.value_dim or c.key_dim

    def _out_dims(self, query_dim: int) -> tuple[int, ...]:
        given = self.config.output_shape
        if given is None:
            return (query_dim,)
        return (given,) if isinstance(given, int) else tuple(given)

    def _attention_axes(self, rank: int) -> tuple[int, ...]:
        axes = self.config.attention_axes
        if axes is None:
            return tuple(range(1, rank - 1))
        listed = (axes,) if isinstance(axes, int) else axes
        out = tuple(sorted({a % rank for a in listed}))
        if any(a in (0, rank - 1) for a in out) or len(out) != len(listed):
            raise ShapeError(
                f"attention_axes {list(listed)} must name distinct axes between the batch and "
                f"the features of a rank-{rank} input",
                field="attention_axes",
            )
        return out

    def _shapes(self, input_shape: Any) -> list[tuple[Any, ...]]:
        several = isinstance(input_shape, (list, tuple)) and all(
            isinstance(s, (list, tuple)) for s in input_shape
        )
        if not several or not 2 <= len(input_shape) <= 4:
            raise ShapeError(
                "MultiHeadAttention takes [query, value], [query, value, key] or "
                "[query, value, key, attention_mask]",
                field="inputs",
                hint="self-attention: inputs: [x, x], or inputs: {query: x, value: x}",
            )
        shapes = [tuple(s) for s in input_shape]
        return shapes if len(shapes) > 2 else [*shapes, shapes[1]]

    def compute_output_shape(self, input_shape: Any) -> Any:
        query, value, key = self._shapes(input_shape)[:3]
        rank = len(query)
        if rank < 3 or len(value) != rank or len(key) != rank:
            raise ShapeError(
                f"query, value and key need one rank of 3 or more (batch, ..., features); got "
                f"{query}, {value}, {key}",
                hint="add a Reshape to give a vector a sequence axis",
            )
        if value[1:-1] != key[1:-1]:
            raise ShapeError(f"value {value} and key {key} must agree on every axis but the last")
        if any(d is None for d in (query[-1], value[-1], key[-1])):
            raise ShapeError("MultiHeadAttention needs known feature sizes (the last axis)")
        axes = self._attention_axes(rank)
        if (self.config.use_causal_mask or self.config.sliding_window) and len(axes) != 1:
            raise ShapeError(
                "use_causal_mask and sliding_window work on one attention axis",
                field="attention_axes",
            )
        return (*query[:-1], *self._out_dims(int(query[-1])))

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        c = self.config
        self.compute_output_shape(input_shape)
        query, value, key = self._shapes(input_shape)[:3]
        heads, kv_heads, kd, vd = self._dims()
        out = self._out_dims(int(query[-1]))
        kernels = {
            "query": ((int(query[-1]), heads, kd), 1),
            "key": ((int(key[-1]), kv_heads, kd), 1),
            "value": ((int(value[-1]), kv_heads, vd), 1),
            "attention_output": ((heads, vd, *out), 2),
        }
        biases: dict[str, tuple[int, ...]] = {
            "query": (heads, kd),
            "key": (kv_heads, kd),
            "value": (kv_heads, vd),
            "attention_output": out,
        }
        specs = []
        for name, (shape, fan_in_axes) in kernels.items():
            init = matrix_initializer(c.kernel_initializer, math.prod(shape[:fan_in_axes]))
            kernel = configured_weight(c, f"{name}/kernel", shape, "kernel")
            specs.append(replace(kernel, initializer=init))
            if c.use_bias:
                specs.append(configured_weight(c, f"{name}/bias", biases[name], "bias"))
        return specs

    def flops(self, input_shape: Any) -> int:
        query, value, key = self._shapes(input_shape)[:3]
        heads, kv_heads, kd, vd = self._dims()
        t = math.prod(d or 1 for d in query[1:-1])
        s = math.prod(d or 1 for d in value[1:-1])
        hk, hv = heads * kd, heads * vd
        out = math.prod(self._out_dims(int(query[-1])))
        projections = t * query[-1] * hk + s * (key[-1] * kd + value[-1] * vd) * kv_heads
        projections += t * hv * out
        return 2 * (projections + t * s * (hk + hv))

    # ----- masks --------------------------------------------------------------------------
    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return mask[0] if mask else None

    def _mask(self, xp: Any, arrays: list[Array], masks: Any, t: int, s: int) -> Array | None:
        """The boolean mask over (B, 1, T, S), or None when every position may attend."""
        parts: list[Array] = []
        if masks:
            keyed = len(arrays) > 2
            if masks[0] is not None:
                parts.append(xp.asarray(masks[0], dtype=bool)[:, None, :, None])
            for m in (masks[1], masks[2] if keyed else None):
                if m is not None:
                    parts.append(xp.asarray(m, dtype=bool)[:, None, None, :])
        if len(arrays) > 3:
            explicit = xp.asarray(arrays[3]).astype(bool)
            parts.append(explicit.reshape(explicit.shape[0], 1, *explicit.shape[1:]))
        if self.config.use_causal_mask:
            parts.append(attention_kernels.causal_mask(xp, t, s))
        if self.config.sliding_window:
            parts.append(attention_kernels.band_mask(xp, t, s, self.config.sliding_window))
        if parts and arrays[0].ndim != 3:
            raise ValueError(
                f"MultiHeadAttention {self.name!r}: masks need rank-3 inputs (batch, time, "
                f"features); got rank {arrays[0].ndim}"
            )
        combined = None
        for p in parts:
            combined = p if combined is None else combined & p
        return combined

    # ----- math ---------------------------------------------------------------------------
    def _named(self, params: list[Array]) -> dict[str, tuple[Array, Array | None]]:
        return _by_projection(params, self.config.use_bias)

    def forward(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Array, Any]:
        arrays = list(inputs)
        query, value = arrays[0], arrays[1]
        key = arrays[2] if len(arrays) > 2 else value
        xp = backend.backend_of(query).xp
        w = self._named(params)
        axes = self._attention_axes(query.ndim)
        packed = self._packs(arrays)
        if packed:
            q, k, v = _project_packed(query, [w[n] for n in QKV])
        else:
            q = _project(query, *w["query"], 1)
            k = _project(key, *w["key"], 1)
            v = _project(value, *w["value"], 1)
        q_layout = HeadLayout.of(q.shape, axes)
        k_layout = HeadLayout.of(k.shape, axes)
        mask = self._mask(xp, arrays, ctx.mask, q_layout.length, k_layout.length)
        rng = (self._rng or ctx.rng) if ctx.training else None
        heads, kv_heads, key_dim, _ = self._dims()
        qh = q_layout.split(q)
        kh, vh = (_repeat_heads(xp, k_layout.split(a), heads // kv_heads) for a in (k, v))
        weights_shape = (*qh.shape[:-1], kh.shape[-2])
        keep = attention_kernels.dropout_keep(weights_shape, q.dtype, self.config.dropout, rng, xp)
        scale = 1.0 / math.sqrt(key_dim)
        buffer, view = q_layout.split_buffer(
            xp, (*q.shape[:-1], vh.shape[-1]), xp.result_type(q.dtype, v.dtype), ctx, "heads"
        )
        heads, attn = attention_kernels.attention_forward(qh, kh, vh, scale, mask, keep, view)
        combined = buffer if view is not None else q_layout.merge(heads)
        out = _project(combined, *w["attention_output"], 2)
        return out, (arrays, q_layout, k_layout, attn, combined, packed)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        arrays, _, _, _, combined, packed = cache
        w = self._named(params)
        slots = _by_projection(grads, self.config.use_bias)
        dcombined = _project_backward(
            combined, w["attention_output"][0], grad_output, slots["attention_output"], 2
        )
        query, value = arrays[0], arrays[1]
        key = arrays[2] if len(arrays) > 2 else value
        need = ctx.need_input_grad
        if packed:
            dqkv = self._packed_attention_grads(cache, query, dcombined, ctx)
            kernels = [w[n][0] for n in QKV]
            gx = _project_packed_backward(query, kernels, dqkv, [slots[n] for n in QKV], need)
            return [gx, *([None] * (len(arrays) - 1))]
        dq, dk, dv = self._attention_grads(cache, [query, key, value], dcombined, ctx)
        gq = _project_backward(query, w["query"][0], dq, slots["query"], 1, need)
        gk = _project_backward(key, w["key"][0], dk, slots["key"], 1, need)
        gv = _project_backward(value, w["value"][0], dv, slots["value"], 1, need)
        if not need:
            return [None] * len(arrays)
        if len(arrays) == 2:
            return [gq, gv + gk]
        return [gq, gv, gk, *([None] * (len(arrays) - 3))]

    def _attention_grads(
        self, cache: Any, sources: list[Array], dcombined: Array, ctx: CallContext
    ) -> tuple[Array, Array, Array]:
        """The gradients of the projected query, key and value, in their unsplit layouts:
        written there directly where the layouts allow, else merged (and, with fewer key and
        value heads, summed over each group's repeats) afterwards."""
        _, q_layout, k_layout, attn, _, _ = cache
        xp = backend.backend_of(dcombined).xp
        heads, kv_heads, key_dim, value_dim = self._dims()
        grad_heads = q_layout.split(dcombined)
        if heads == kv_heads:
            dims = (key_dim, key_dim, value_dim)
            layouts = (q_layout, k_layout, k_layout)
            buffers = [
                layout.split_buffer(xp, (*x.shape[:-1], heads, d), dcombined.dtype, ctx, name)
                for layout, x, d, name in zip(
                    layouts, sources, dims, ("dq", "dk", "dv"), strict=True
                )
            ]
            views = tuple(view for _, view in buffers)
            if all(view is not None for view in views):
                attention_kernels.attention_backward(attn, grad_heads, views)
                return buffers[0][0], buffers[1][0], buffers[2][0]
        dq, dk, dv = attention_kernels.attention_backward(attn, grad_heads)
        dk, dv = (_sum_repeats(g, heads // kv_heads) for g in (dk, dv))
        return q_layout.merge(dq), k_layout.merge(dk), k_layout.merge(dv)

    def _packs(self, arrays: list[Array]) -> bool:
        """Whether the query, key and value projections run as one product: self-attention
        (one array in all three roles) with as many key and value heads as query heads.

        Why: one (d, 3 * heads * dim) product packs its input once instead of three times,
        and backward the input's gradient is one product with the three projections' gradients
        side by side (K = 3 * heads * dim) instead of three products and two (B, T, d) sums."""
        key = arrays[2] if len(arrays) > 2 else arrays[1]
        heads, kv_heads, _, _ = self._dims()
        return arrays[0] is arrays[1] and key is arrays[0] and heads == kv_heads

    def _packed_attention_grads(
        self, cache: Any, query: Array, dcombined: Array, ctx: CallContext
    ) -> Array:
        """The gradients of the packed projection (B, *T, 3 * heads * dim): the attention
        kernel writes each head's query, key and value gradients into its columns."""
        _, q_layout, _, attn, _, _ = cache
        xp = backend.backend_of(dcombined).xp
        heads, _, key_dim, value_dim = self._dims()
        dims = (key_dim, key_dim, value_dim)
        shape = (*query.shape[:-1], heads * sum(dims))
        if isinstance(ctx, workspace.PlannedContext):
            packed = ctx.buffer(xp, "dqkv", shape, dcombined.dtype)
        else:
            packed = xp.empty(shape, dtype=dcombined.dtype)
        parts = _packed_parts(packed, heads, dims)
        views = tuple(q_layout.split(p) for p in parts)
        grad_heads = q_layout.split(dcombined)
        if all(xp.shares_memory(v, packed) for v in views):
            attention_kernels.attention_backward(attn, grad_heads, views)
        else:
            for part, g in zip(
                parts, attention_kernels.attention_backward(attn, grad_heads), strict=True
            ):
                part[...] = q_layout.merge(g)
        return packed

    @property
    def _rng(self) -> np.random.Generator | None:
        seed = self.config.seed
        if seed is None:
            return None
        if getattr(self, "_seeded", None) is None:
            self._seeded = np.random.default_rng(seed)
        return self._seeded

    # ----- the Python call, with Keras's signature ----------------------------------------
    def __call__(  # type: ignore[override]
        self,
        query: Any,
        value: Any = None,
        key: Any = None,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        training: bool | None = None,
        use_causal_mask: bool = False,
    ) -> Any:
        if value is None and isinstance(query, (list, tuple)):
            items = list(query)  # the graph's form: one list in PORTS order
        else:
            items = [query, value]
            if key is not None or attention_mask is not None:
                items.append(value if key is None else key)
            if attention_mask is not None:
                items.append(attention_mask)
        masks = [query_mask, value_mask, key_mask][: min(len(items), 3)]
        mask = masks if any(m is not None for m in masks) else None
        return call_attention(
            self, items, training, mask, return_attention_scores, _scores, use_causal_mask
        )


def _scores(cache: Any) -> Array:
    """The weights in Keras's layout: (B, *other axes, heads, *query axes, *key axes)."""
    q_layout: HeadLayout = cache[1]
    k_layout: HeadLayout = cache[2]
    n = q_layout.attention_axes
    return attention_kernels.attention_probs(cache[3]).reshape(
        *q_layout.moved[:-1], *k_layout.moved[-1 - n : -1]
    )


def _repeat_heads(xp: Any, x: Array, repeats: int) -> Array:
    """(B, kv heads, L, d) -> (B, kv heads * repeats, L, d), each head `repeats` times in a row
    (GroupQueryAttention's `ops.repeat(key, num_repeats, axis=2)`)."""
    return x if repeats == 1 else xp.repeat(x, repeats, axis=1)


def _sum_repeats(g: Array, repeats: int) -> Array:
    if repeats == 1:
        return g
    rows, heads, length, dim = g.shape
    return g.reshape(rows, heads // repeats, repeats, length, dim).sum(axis=2)


def _project(x: Array, kernel: Array, bias: Array | None, contracted: int) -> Array:
    """EinsumDense's product: the last `contracted` axes of x with the kernel's first ones."""
    xp = backend.backend_of(x).xp
    lead = x.shape[: x.ndim - contracted]
    rows = math.prod(kernel.shape[:contracted])
    x2 = x.reshape(-1, rows)
    w2 = kernel.reshape(rows, -1)
    y = xp.empty((x2.shape[0], w2.shape[1]), dtype=xp.result_type(x2.dtype, w2.dtype))
    gemm.matmul(x2, w2, y, None if bias is None else gemm.BiasRelu(bias.reshape(-1), False))
    return y.reshape(*lead, *kernel.shape[contracted:])


def _packed_parts(y: Array, heads: int, dims: tuple[int, ...]) -> list[Array]:
    """The (..., heads, dim) views of the query's, key's and value's columns of (..., N)."""
    parts, start = [], 0
    for dim in dims:
        width = heads * dim
        parts.append(y[..., start : start + width].reshape(*y.shape[:-1], heads, dim))
        start += width
    return parts


def _packed_kernel(xp: Any, kernels: list[Array]) -> Array:
    """The (d, 3 * heads * dim) kernel of the packed projection: the three side by side."""
    return xp.concatenate([k.reshape(k.shape[0], -1) for k in kernels], axis=1)


def _project_packed(x: Array, projections: list[tuple[Array, Array | None]]) -> list[Array]:
    """The query, key and value projections of one input as one product; their
    (..., heads, dim) results are views of its (..., 3 * heads * dim) output."""
    xp = backend.backend_of(x).xp
    kernels = [k for k, _ in projections]
    kernel = _packed_kernel(xp, kernels)
    x2 = x.reshape(-1, x.shape[-1])
    y = xp.empty((x2.shape[0], kernel.shape[1]), dtype=xp.result_type(x2.dtype, kernel.dtype))
    biases = [b.reshape(-1) for _, b in projections if b is not None]
    bias = gemm.BiasRelu(xp.concatenate(biases), False) if biases else None
    gemm.matmul(x2, kernel, y, bias)
    y = y.reshape(*x.shape[:-1], kernel.shape[1])
    return _packed_parts(y, kernels[0].shape[1], tuple(k.shape[2] for k in kernels))


def _project_packed_backward(
    x: Array,
    kernels: list[Array],
    dy: Array,
    slots: list[tuple[Array | None, Array | None]],
    need_dx: bool,
) -> Array | None:
    """The packed projection's backward: its kernels' gradient and the input's as a pair of
    whole products (one per core), then each projection's share of the kernel's and bias's
    gradients copied to its own slots."""
    xp = backend.backend_of(x).xp
    kernel = _packed_kernel(xp, kernels)
    x2 = x.reshape(-1, x.shape[-1])
    dy2 = dy.reshape(x2.shape[0], kernel.shape[1])
    products = []
    dkernel = None
    if any(k is not None for k, _ in slots):
        dkernel = xp.empty(kernel.shape, dtype=dy2.dtype)
        products.append((x2.T, dy2, dkernel))
    dx = None
    if need_dx:
        dx = xp.empty(x2.shape, dtype=dy2.dtype)
        products.append((dy2, kernel.T, dx))
    gemm.matmuls(products)
    dbias = dy2.sum(axis=0) if any(b is not None for _, b in slots) else None
    start = 0
    for (kernel_grad, bias_grad), k in zip(slots, kernels, strict=True):
        width = math.prod(k.shape[1:])
        columns = slice(start, start + width)
        if kernel_grad is not None and dkernel is not None:
            kernel_grad.reshape(x2.shape[1], width)[...] = dkernel[:, columns]
        if bias_grad is not None and dbias is not None:
            bias_grad.reshape(width)[...] = dbias[columns]
        start += width
    return None if dx is None else dx.reshape(x.shape)


def _project_backward(
    x: Array,
    kernel: Array,
    dy: Array,
    slots: tuple[Array | None, Array | None],
    contracted: int,
    need_dx: bool = True,
) -> Any:
    xp = backend.backend_of(x).xp
    rows = math.prod(kernel.shape[:contracted])
    x2 = x.reshape(-1, rows)
    dy2 = dy.reshape(x2.shape[0], math.prod(kernel.shape[contracted:]))  # (0, -1) fails
    kernel_grad, bias_grad = slots
    if kernel_grad is not None:
        gemm.matmul(x2.T, dy2, kernel_grad.reshape(rows, -1))
    if bias_grad is not None:
        dy2.sum(axis=0, out=bias_grad.reshape(-1))
    if not need_dx:
        return None
    dx = xp.empty(x2.shape, dtype=dy2.dtype)
    gemm.matmul(dy2, kernel.reshape(rows, -1).T, dx)
    return dx.reshape(x.shape)


def _by_projection(items: list[Any], use_bias: bool) -> dict[str, tuple[Any, Any]]:
    """(kernel, bias or None) of each projection, from the weights' (or gradients') list."""
    names = ("query", "key", "value", "attention_output")
    if use_bias:
        return {n: (items[2 * i], items[2 * i + 1]) for i, n in enumerate(names)}
    return {n: (items[i], None) for i, n in enumerate(names)}
