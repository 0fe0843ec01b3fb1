"""The process-wide random generator behind unseeded weights and ops (`en.random.set_seed`).

Training never uses it: a model built from a spec owns a generator made from the spec's seed,
so a run does not depend on what else the process did.
"""

from __future__ import annotations

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
