"""The process-wide random generator behind unseeded weights and ops (`en.random.set_seed`).

Training never uses it: a model built from a spec owns a generator made from the spec's seed,
so a run does not depend on what else the process did.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from engine.lazy import numpy as np

# Made at the first unseeded use, so that importing the layers does not load NumPy.
_generator: np.random.Generator | None = None


def set_seed(seed: int) -> None:
    """Reseed the global generator, as `keras.utils.set_random_seed` does."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator(seed: int | None = None) -> np.random.Generator:
    """A fresh generator for an explicit seed, or the global one."""
    global _generator
    if seed is not None:
        return np.random.default_rng(seed)
    if _generator is None:
        _generator = np.random.default_rng()
    return _generator


# a float32 draw is the top 24 bits of a 32-bit output: d = (u >> 8) * 2**-24
_FLOAT32_BITS = 24


def kept(generator: np.random.Generator, shape: tuple[int, ...], rate: float, dtype: Any) -> Any:
    """`generator.random(shape, dtype=dtype) >= rate` as a boolean array, the generator left as
    that leaves it. For float32 draws from PCG64 (default_rng's), even in number and with no
    half-used 64-bit output held, the mask comes from the raw outputs instead: each 64-bit
    output gives two draws, its low half first, and d >= rate exactly when u >> 8 >= ceil(rate
    2**24) (rate as the comparison takes it: float32 for a Python float). That skips the float
    conversion: 0.22 against 0.52 ms for W3's (128, 1600) Dropout (Intel Xeon, December 8)."""
    size = math.prod(shape)
    bits = generator.bit_generator
    fast = (
        np.dtype(dtype) == np.float32
        and size % 2 == 0
        and type(bits) is np.random.PCG64
        and sys.byteorder == "little"
    )
    state = bits.state if fast else None
    if state is None or state["has_uint32"]:
        return generator.random(shape, dtype=dtype) >= rate
    raw = bits.random_raw(size // 2)
    if size:  # what the draws leave: the last output's high half, consumed
        bits.state = {**bits.state, "uinteger": int(raw[-1]) >> 32}
    threshold = float(np.float32(0) + rate)  # promoted as `draws >= rate` promotes it
    least = math.ceil(threshold * 2**_FLOAT32_BITS)
    if least <= 0:
        return np.ones(shape, dtype=bool)
    if least >= 2**_FLOAT32_BITS:
        return np.zeros(shape, dtype=bool)
    halves = raw.view(np.uint32).reshape(shape)
    return halves >= np.uint32(least << (32 - _FLOAT32_BITS))
