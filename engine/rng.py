"""The process-wide random generator behind unseeded weights and ops (`en.random.set_seed`).

Training never uses it: a model built from a spec owns a generator made from the spec's seed,
so a run does not depend on what else the process did.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Reseed the global generator, as `keras.utils.set_random_seed` does."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator(seed: int | None = None) -> np.random.Generator:
    """A fresh generator for an explicit seed, or the global one."""
    return np.random.default_rng(seed) if seed is not None else _generator
