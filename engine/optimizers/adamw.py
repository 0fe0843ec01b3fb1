"""AdamW: Keras 3's Adam plus decoupled weight decay (default 0.004)."""

from __future__ import annotations

from engine.config.optimizers import AdamWConfig
from engine.optimizers.adam import Adam


class AdamW(Adam):
    """Keras's `AdamW`."""

    name = "adamw"
    config_class = AdamWConfig
