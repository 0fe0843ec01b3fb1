"""Attention and AdditiveAttention: Keras 3's single-head attention without projections.

Called on `[query, value]` or `[query, value, key]` (key defaults to value): query (B, Tq, d),
value (B, Tv, dv), key (B, Tv, d) -> (B, Tq, dv). Scores (B, Tq, Tv):
- Attention, score_mode "dot": `q k^T`, times the learned scalar `scale` if use_scale;
  score_mode "concat": `concat_score_weight * sum(tanh(scale * (q_i + k_j)))`.
- AdditiveAttention (Bahdanau): `sum(scale * tanh(q_i + k_j))`, `scale` a learned vector (d,).
Then, as in Keras: where the value's mask (and `use_causal_mask`) says no, 1e9 is subtracted
from the score; softmax over Tv; dropout on the weights in training; weights @ value; rows of
a masked query are zeroed, and the output carries the query's mask.
Weights: Attention 0, 1 (use_scale) or 2 (concat); AdditiveAttention d (use_scale, default).
Example: `AdditiveAttention()` on (None, 5, 8) queries has 8 parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from engine.layers.attention_call import call_attention
from engine.layers.base import (
    Array,
    CallContext,
    Layer,
    LayerConfig,
    ShapeError,
    WeightSpec,
)
from engine.layers.registry import register
from engine.lazy import attention_kernels, backend, batched_gemm, softmax_kernels
from engine.lazy import numpy as np

MASK_OFFSET = 1.0e9


class AttentionConfig(LayerConfig):
    type: Literal["Attention"] = "Attention"
    use_scale: bool = False
    score_mode: Literal["dot", "concat"] = "dot"
    dropout: float = Field(0.0, ge=0.0, le=1.0)
    seed: int | None = None
    use_causal_mask: bool = False  # Keras's call argument, written in the spec entry


class AdditiveAttentionConfig(LayerConfig):
    type: Literal["AdditiveAttention"] = "AdditiveAttention"
    use_scale: bool = True
    dropout: float = Field(0.0, ge=0.0, le=1.0)
    seed: int | None = None
    use_causal_mask: bool = False


class _BaseAttention(Layer):
    """The shared part: shapes, masks, softmax, dropout, the weighted sum and its gradient."""

    concurrent_inference = True
    multi_input = True
    supports_masking = True
    call_ports = ("query", "value", "key")
    port_defaults = {"key": "value"}  # noqa: RUF012  (a class-level table, never mutated)
    additive: ClassVar[bool] = False

    def _shapes(self, input_shape: Any) -> list[tuple[Any, ...]]:
        several = isinstance(input_shape, (list, tuple)) and all(
            isinstance(s, (list, tuple)) for s in input_shape
        )
        if not several or len(input_shape) not in (2, 3):
            raise ShapeError(
                f"{self.type_name} takes [query, value] or [query, value, key]",
                field="inputs",
                hint="inputs: [query, value], or inputs: {query: q, value: v}",
            )
        shapes = [tuple(s) for s in input_shape]
        return shapes if len(shapes) == 3 else [*shapes, shapes[1]]

    def compute_output_shape(self, input_shape: Any) -> Any:
        query, value, key = self._shapes(input_shape)
        if any(len(s) != 3 for s in (query, value, key)):
            raise ShapeError(
                f"{self.type_name} needs rank-3 inputs (batch, steps, features); got "
                f"{query}, {value}, {key}"
            )
        if query[-1] != key[-1] and None not in (query[-1], key[-1]):
            raise ShapeError(f"query {query} and key {key} need the same last dimension")
        if value[1] != key[1] and None not in (value[1], key[1]):
            raise ShapeError(f"value {value} and key {key} need the same number of steps")
        return (*query[:-1], value[-1])

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return mask[0] if mask else None

    def _scores(self, params: list[Array], q: Array, k: Array) -> tuple[Array, Any]:
        raise NotImplementedError

    def _scores_backward(
        self, params: list[Array], cache: Any, ds: Array, grads: list[Array | None]
    ) -> tuple[Array, Array]:
        raise NotImplementedError

    def forward(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Array, Any]:
        arrays = list(inputs)
        q, v = arrays[0], arrays[1]
        k = arrays[2] if len(arrays) > 2 else v
        xp = backend.backend_of(q).xp
        scores, score_cache = self._scores(params, q, k)
        masks = ctx.mask or [None, None]
        allowed = None
        if masks[1] is not None:
            allowed = xp.asarray(masks[1], dtype=bool)[:, None, :]
        if self.config.use_causal_mask:
            causal = attention_kernels.causal_mask(xp, scores.shape[1], scores.shape[2])[0]
            allowed = causal if allowed is None else allowed & causal
        if allowed is not None:
            # Keras subtracts 1e9 from masked scores; the masked softmax replaces them by -1e9,
            # the same weights wherever a row allows a key. A row that allows none keeps
            # Keras's softmax of the shifted scores, the only place the shift shows.
            blind = ~allowed.any(axis=-1, keepdims=True)
            scores = xp.where(blind, scores - scores.dtype.type(MASK_OFFSET), scores)
            allowed = allowed | blind
        probs = softmax_kernels.masked_softmax(scores, allowed)
        rng = (self._seeded() or ctx.rng) if ctx.training else None
        keep = attention_kernels.dropout_keep(
            probs.shape, probs.dtype, self.config.dropout, rng, xp
        )
        dropped = probs if keep is None else probs * keep
        out = batched_gemm.product(dropped, v)
        rows = None
        if masks[0] is not None:
            rows = xp.asarray(masks[0], dtype=out.dtype)[:, :, None]
            out = out * rows
        return out, (q, v, k, len(arrays), score_cache, probs, keep, dropped, rows)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        xp = backend.backend_of(grad_output).xp
        q, v, k, n, score_cache, probs, keep, dropped, rows = cache
        g = grad_output if rows is None else grad_output * rows
        dv = batched_gemm.product(xp.swapaxes(dropped, -1, -2), g)
        dprobs = batched_gemm.product(g, xp.swapaxes(v, -1, -2))
        if keep is not None:
            dprobs = dprobs * keep
        softmax_kernels.softmax_backward(dprobs, probs)
        dq, dk = self._scores_backward(params, score_cache, dprobs, grads)
        if not ctx.need_input_grad:
            return [None] * n
        return [dq, dv + dk] if n == 2 else [dq, dv, dk]

    def __call__(  # type: ignore[override]
        self,
        inputs: Any,
        mask: Any = None,
        training: bool | None = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        """Keras's call: `layer([query, value], mask=[query_mask, value_mask], ...)`."""
        return call_attention(
            self,
            list(inputs),
            training,
            mask,
            return_attention_scores,
            lambda cache: cache[5],
            use_causal_mask,
        )

    def _seeded(self) -> np.random.Generator | None:
        if self.config.seed is None:
            return None
        if getattr(self, "_rng", None) is None:
            self._rng = np.random.default_rng(self.config.seed)
        return self._rng


def _pairwise(xp: Any, q: Array, k: Array) -> Array:
    """q_i + k_j over (B, Tq, Tv, d)."""
    return q[:, :, None, :] + k[:, None, :, :]


@register
class Attention(_BaseAttention):
    """Dot-product (Luong) attention; see the module docstring."""

    type_name = "Attention"
    config_class = AttentionConfig
    positional = ("use_scale", "score_mode", "dropout", "seed")
    config: AttentionConfig

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        self.compute_output_shape(input_shape)
        specs = []
        if self.config.use_scale:
            specs.append(WeightSpec("scale", (), "ones"))
        if self.config.score_mode == "concat":
            specs.append(WeightSpec("concat_score_weight", (), "ones"))
        return specs

    def _scale(self, params: list[Array]) -> Array | None:
        return params[0] if self.config.use_scale else None

    def _scores(self, params: list[Array], q: Array, k: Array) -> tuple[Array, Any]:
        xp = backend.backend_of(q).xp
        scale = self._scale(params)
        if self.config.score_mode == "dot":
            raw = batched_gemm.product(q, xp.swapaxes(k, -1, -2))
            return (raw if scale is None else raw * scale), (q, k, raw)
        summed = _pairwise(xp, q, k)
        t = xp.tanh(summed if scale is None else summed * scale)
        weight = params[-1]
        total = t.sum(axis=-1)
        return weight * total, (q, k, summed, t, total)

    def _scores_backward(
        self, params: list[Array], cache: Any, ds: Array, grads: list[Array | None]
    ) -> tuple[Array, Array]:
        xp = backend.backend_of(ds).xp
        scale = self._scale(params)
        if self.config.score_mode == "dot":
            q, k, raw = cache
            if scale is not None and grads[0] is not None:
                grads[0][...] = (ds * raw).sum()
            d = ds if scale is None else ds * scale
            return batched_gemm.product(d, k), batched_gemm.product(xp.swapaxes(d, -1, -2), q)
        q, k, summed, t, total = cache
        weight = params[-1]
        if grads[-1] is not None:
            grads[-1][...] = (ds * total).sum()
        du = (ds * weight)[..., None] * (1 - t * t)
        if scale is not None:
            if grads[0] is not None:
                grads[0][...] = (du * summed).sum()
            du = du * scale
        return du.sum(axis=2), du.sum(axis=1)


@register
class AdditiveAttention(_BaseAttention):
    """Additive (Bahdanau) attention; see the module docstring."""

    type_name = "AdditiveAttention"
    config_class = AdditiveAttentionConfig
    positional = ("use_scale", "dropout")
    config: AdditiveAttentionConfig

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        query = self._shapes(input_shape)[0]
        self.compute_output_shape(input_shape)
        if not self.config.use_scale:
            return []
        return [WeightSpec("scale", (int(query[-1]),), "glorot_uniform")]

    def _scores(self, params: list[Array], q: Array, k: Array) -> tuple[Array, Any]:
        xp = backend.backend_of(q).xp
        t = xp.tanh(_pairwise(xp, q, k))
        weighted = t * params[0] if self.config.use_scale else t
        return weighted.sum(axis=-1), t

    def _scores_backward(
        self, params: list[Array], cache: Any, ds: Array, grads: list[Array | None]
    ) -> tuple[Array, Array]:
        t = cache
        if self.config.use_scale:
            if grads[0] is not None:
                grads[0][...] = (ds[..., None] * t).sum(axis=(0, 1, 2))
            du = ds[..., None] * params[0] * (1 - t * t)
        else:
            du = ds[..., None] * (1 - t * t)
        return du.sum(axis=2), du.sum(axis=1)
