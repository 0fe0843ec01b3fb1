"""GroupQueryAttention: Keras 3's grouped-query attention, MultiHeadAttention with fewer key and
value heads, each shared by `num_query_heads // num_key_value_heads` query heads.

Called like MultiHeadAttention (`[query, value]`, `[query, value, key]`, `[query, value, key,
attention_mask]`, or a mapping), on rank-3 inputs: query (B, T, m) -> (B, T, m). Weights:
query/kernel (m, query heads, head_dim), query/bias, key/kernel (m_k, kv heads, head_dim),
key/bias, value/kernel (m_v, kv heads, head_dim), value/bias, attention_output/kernel
(query heads, head_dim, m), attention_output/bias (m,). Example:
`GroupQueryAttention(head_dim=8, num_query_heads=4, num_key_value_heads=2)` on (None, 10, 32)
has (32*32 + 32) + 2 * (32*16 + 16) + (32*32 + 32) = 3168 parameters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from engine.constraints import ConstraintSpec
from engine.initializers import InitializerSpec
from engine.layers.base import LayerConfig, ShapeError
from engine.layers.multi_head_attention import MultiHeadAttention
from engine.layers.registry import register
from engine.regularizers import RegularizerSpec


class GroupQueryAttentionConfig(LayerConfig):
    type: Literal["GroupQueryAttention"] = "GroupQueryAttention"
    head_dim: PositiveInt
    num_query_heads: PositiveInt
    num_key_value_heads: PositiveInt
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    use_bias: bool = True
    sliding_window: PositiveInt | None = None
    kernel_initializer: InitializerSpec = "glorot_uniform"
    bias_initializer: InitializerSpec = "zeros"
    kernel_regularizer: RegularizerSpec | None = None
    bias_regularizer: RegularizerSpec | None = None
    activity_regularizer: RegularizerSpec | None = None
    kernel_constraint: ConstraintSpec | None = None
    bias_constraint: ConstraintSpec | None = None
    seed: int | None = None
    use_causal_mask: bool = False  # Keras's call argument, written in the spec entry

    @model_validator(mode="after")
    def _groups(self) -> GroupQueryAttentionConfig:
        if self.num_query_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_query_heads ({self.num_query_heads}) must be divisible by "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        return self


@register
class GroupQueryAttention(MultiHeadAttention):
    type_name = "GroupQueryAttention"
    config_class = GroupQueryAttentionConfig  # type: ignore[assignment]
    positional = ("head_dim", "num_query_heads", "num_key_value_heads")
    config: GroupQueryAttentionConfig  # type: ignore[assignment]

    def _dims(self) -> tuple[int, int, int, int]:
        c = self.config
        return c.num_query_heads, c.num_key_value_heads, c.head_dim, c.head_dim

    def _out_dims(self, query_dim: int) -> tuple[int, ...]:
        return (query_dim,)

    def _attention_axes(self, rank: int) -> tuple[int, ...]:
        if rank != 3:
            raise ShapeError(
                f"GroupQueryAttention needs rank-3 inputs (batch, steps, features); got rank {rank}"
            )
        return (1,)
