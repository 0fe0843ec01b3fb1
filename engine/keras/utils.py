"""`keras.utils`: the helpers Keras code reaches for around a model."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.layers.base import clear_session
from engine.rng import set_seed as set_random_seed


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """Class ids -> one-hot rows, float32: (n,) -> (n, num_classes); Keras drops a trailing
    axis of size 1 first, and takes `max(x) + 1` classes when not told."""
    ids = np.asarray(x, dtype=np.int64)
    if ids.ndim > 1 and ids.shape[-1] == 1:
        ids = ids[..., 0]
    count = int(ids.max()) + 1 if num_classes is None else num_classes
    if ids.size and (ids.min() < 0 or ids.max() >= count):
        raise ValueError(f"class ids must be in [0, {count}); got {ids.min()}..{ids.max()}")
    return np.eye(count, dtype=np.float32)[ids]


__all__ = ["clear_session", "set_random_seed", "to_categorical"]
