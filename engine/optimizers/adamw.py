"""AdamW: Keras 3's Adam plus decoupled weight decay (default 0.004)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.optimizers.adam import Adam, AdamConfig


class AdamWConfig(AdamConfig):
    """`{type: adamw, weight_decay: 0.004, ...}` with Adam's other arguments and defaults.

    The decay is the shared `p -= lr * weight_decay * p` step applied before the Adam update,
    as Keras does; PyTorch's AdamW multiplies by `1 - lr * weight_decay` (default 0.01).
    """

    type: Literal["adamw"]  # type: ignore[assignment]
    weight_decay: float | None = Field(default=0.004, ge=0)


class AdamW(Adam):
    """Keras's `AdamW`."""

    name = "adamw"
    config_class = AdamWConfig
