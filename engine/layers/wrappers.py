"""Bidirectional and TimeDistributed: layers that run another layer, given as `layer: {...}`.

The nested entry is validated by the wrapped type's own config model from the registry, so a
wrapper accepts exactly what the layer accepts on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import field_validator

from engine.layers import registry
from engine.layers.base import (
    Array,
    CallContext,
    Layer,
    LayerConfig,
    ShapeError,
    WeightSpec,
    snake_case,
)
from engine.layers.recurrent import RNNBase
from engine.layers.registry import register
from engine.lazy import backend


def _validated_layer(value: Any) -> dict[str, Any]:
    """A nested layer entry checked against its type's config model, in JSON form."""
    if isinstance(value, Layer):
        return value.get_config()
    if isinstance(value, LayerConfig):
        return value.model_dump(mode="json", exclude_none=True)
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(f"`layer` must be a layer entry with a `type`; got {value!r}")
    try:
        cls = registry.get(value["type"])
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None
    return cls.config_class(**value).model_dump(mode="json", exclude_none=True)


def _build_inner(config: dict[str, Any], **overrides: Any) -> Layer:
    return registry.get(config["type"]).from_config({**config, **overrides})


# ----- Bidirectional ------------------------------------------------------------------------
MergeMode = Literal["concat", "sum", "mul", "ave"]


class BidirectionalConfig(LayerConfig):
    type: Literal["Bidirectional"] = "Bidirectional"
    layer: dict[str, Any]
    merge_mode: MergeMode | None = "concat"

    @field_validator("layer", mode="before")
    @classmethod
    def _check_layer(cls, value: Any) -> dict[str, Any]:
        config = _validated_layer(value)
        if not issubclass(registry.get(config["type"]), RNNBase):
            raise ValueError(
                f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU); "
                f"got {config['type']}"
            )
        return config

    @field_validator("merge_mode")
    @classmethod
    def _check_merge(cls, value: MergeMode | None) -> MergeMode:
        if value is None:
            raise ValueError(
                "merge_mode None returns two outputs in Keras; modelspec layers have one "
                "output: use concat, sum, mul or ave"
            )
        return value


def _merge_concat(a: Array, b: Array) -> Array:
    return backend.backend_of(a).xp.concatenate([a, b], axis=-1)


def _split_concat(g: Array, a: Array, b: Array) -> tuple[Array, Array]:
    u = a.shape[-1]
    return g[..., :u], g[..., u:]


_MERGES: dict[str, tuple[Callable[[Array, Array], Array], Callable[..., tuple[Array, Array]]]] = {
    "concat": (_merge_concat, _split_concat),
    "sum": (lambda a, b: a + b, lambda g, a, b: (g, g)),
    "mul": (lambda a, b: a * b, lambda g, a, b: (g * b, g * a)),
    "ave": (lambda a, b: (a + b) * 0.5, lambda g, a, b: (g * 0.5, g * 0.5)),
}


@register
class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards and merges the two outputs.

    (N, T, F) -> (N, 2*units) for concat, else (N, units) (with T kept for return_sequences;
    the backward sequence is flipped back to input order). Weights: the forward layer's, then
    the backward layer's, so 2x the parameters: `Bidirectional(LSTM(8))` on 4 features has
    2 * 4 * (8 * (4 + 8) + 8) = 832.
    """

    type_name = "Bidirectional"
    config_class = BidirectionalConfig
    positional = ("layer", "merge_mode")
    supports_masking = True
    config: BidirectionalConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.config.layer
        name = inner.get("name") or snake_case(inner["type"])
        self.forward_layer = _build_inner(inner, name=f"forward_{name}", dtype=self.dtype)
        self.backward_layer = _build_inner(
            inner,
            name=f"backward_{name}",
            go_backwards=not inner.get("go_backwards", False),
            dtype=self.dtype,
        )

    @property
    def _sequences(self) -> bool:
        return bool(self.config.layer.get("return_sequences", False))

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.config.merge_mode == "concat":
            return (*shape[:-1], 2 * shape[-1])
        return shape

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        forward = self.forward_layer.weight_specs(input_shape)
        backward = self.backward_layer.weight_specs(input_shape)
        return [_renamed(s, "forward") for s in forward] + [
            _renamed(s, "backward") for s in backward
        ]

    def flops(self, input_shape: Any) -> int:
        return 2 * self.forward_layer.flops(input_shape)

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return mask if self._sequences else None

    def reset_states(self) -> None:
        """Forget both directions' carried states (stateful inner layers)."""
        self.forward_layer.reset_states()  # type: ignore[attr-defined]
        self.backward_layer.reset_states()  # type: ignore[attr-defined]

    @staticmethod
    def _split(items: list[Any]) -> tuple[list[Any], list[Any]]:
        """Both directions have the same weights: the first half is the forward layer's."""
        k = len(items) // 2
        return items[:k], items[k:]

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        pf, pb = self._split(params)
        yf, cf = self.forward_layer.forward(pf, inputs, ctx)
        yb, cb = self.backward_layer.forward(pb, inputs, ctx)
        if self._sequences:
            yb = yb[:, ::-1]
        merge, _ = _MERGES[self.config.merge_mode or "concat"]
        return merge(yf, yb), (cf, cb, yf, yb)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        cf, cb, yf, yb = cache
        xp = backend.backend_of(grad_output).xp
        _, split = _MERGES[self.config.merge_mode or "concat"]
        gf, gb = split(grad_output, yf, yb)
        if self._sequences:
            gb = gb[:, ::-1]
        pf, pb = self._split(params)
        gradf, gradb = self._split(grads)
        dxf = self.forward_layer.backward(pf, cf, xp.ascontiguousarray(gf), gradf, ctx)
        dxb = self.backward_layer.backward(pb, cb, xp.ascontiguousarray(gb), gradb, ctx)
        if dxf is None or dxb is None:
            return None
        return dxf + dxb


def _renamed(spec: WeightSpec, prefix: str) -> WeightSpec:
    return WeightSpec(
        f"{prefix}/{spec.name}",
        spec.shape,
        spec.initializer,
        spec.trainable,
        spec.regularizer,
        spec.constraint,
    )


# ----- TimeDistributed ----------------------------------------------------------------------
class TimeDistributedConfig(LayerConfig):
    type: Literal["TimeDistributed"] = "TimeDistributed"
    layer: dict[str, Any]

    @field_validator("layer", mode="before")
    @classmethod
    def _check_layer(cls, value: Any) -> dict[str, Any]:
        config = _validated_layer(value)
        if registry.get(config["type"]).multi_input:
            raise ValueError(f"TimeDistributed wraps a one-input layer; got {config['type']}")
        return config


@register
class TimeDistributed(Layer):
    """Applies a layer to every timestep: (N, T, ...) -> (N, T, ...inner output).

    The timesteps are folded into the batch, (N*T, ...), so the inner layer runs once.
    Weights and parameters are the inner layer's: `TimeDistributed(Dense(8))` on (T, 16) has
    16 * 8 + 8 = 136.
    """

    type_name = "TimeDistributed"
    config_class = TimeDistributedConfig
    positional = ("layer",)
    supports_masking = True
    config: TimeDistributedConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layer = _build_inner(self.config.layer, dtype=self.dtype)

    def _inner_shape(self, input_shape: Any) -> Any:
        if len(input_shape) < 3:
            raise ShapeError(
                f"TimeDistributed needs an input of rank 3 or more (batch, timesteps, ...); "
                f"got {input_shape}"
            )
        return (None, *input_shape[2:])

    def compute_output_shape(self, input_shape: Any) -> Any:
        inner = self.layer.compute_output_shape(self._inner_shape(input_shape))
        return (input_shape[0], input_shape[1], *inner[1:])

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        return self.layer.weight_specs(self._inner_shape(input_shape))

    def flops(self, input_shape: Any) -> int:
        return (input_shape[1] or 1) * self.layer.flops(self._inner_shape(input_shape))

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        n, steps = inputs.shape[:2]
        folded = inputs.reshape(n * steps, *inputs.shape[2:])
        inner_ctx = CallContext(ctx.training, ctx.rng, None, ctx.need_input_grad)
        out, cache = self.layer.forward(params, folded, inner_ctx)
        return out.reshape(n, steps, *out.shape[1:]), (cache, inputs.shape, inner_ctx)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        inner_cache, in_shape, inner_ctx = cache
        inner_ctx.need_input_grad = ctx.need_input_grad
        g = grad_output.reshape(-1, *grad_output.shape[2:])
        dx = self.layer.backward(params, inner_cache, g, grads, inner_ctx)
        return None if dx is None else dx.reshape(in_shape)
