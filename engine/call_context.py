"""What a layer's forward/backward pass needs besides arrays, shared by layers and kernels.

It sits below both so that the fused helpers (`engine.fused.workspace`) extend it without
knowing any layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import rng as _rng

if TYPE_CHECKING:
    import numpy as np


@dataclass
class CallContext:
    """What a forward/backward pass needs besides arrays."""

    training: bool = False
    rng: np.random.Generator = field(default_factory=_rng.generator)
    mask: Any = None
    need_input_grad: bool = True
