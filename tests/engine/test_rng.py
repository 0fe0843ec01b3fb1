"""`engine.rng.kept`: Dropout's mask from the generator's raw outputs must be the mask and the
generator state that `generator.random(shape, dtype) >= rate` gives, for any rate and shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.rng import kept

RATES = [0.5, 0.1, 0.77, 1e-7, 0.999999, 0.0, 1.0, np.float64(0.3), np.float32(0.3)]
SHAPES = [(128, 1600), (4, 6), (3, 5), (0, 4), (2, 4, 8, 8)]


@pytest.mark.parametrize("rate", RATES, ids=repr)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_mask_and_the_generator_are_the_draws(rate: Any, shape: tuple, dtype: Any) -> None:
    drawn, raw = np.random.default_rng(5), np.random.default_rng(5)
    for step in range(4):
        if step == 2:  # a half-used 64-bit output held: the draws take it first
            drawn.random(1, dtype=np.float32)
            raw.random(1, dtype=np.float32)
        want = drawn.random(shape, dtype=dtype) >= rate
        got = kept(raw, shape, rate, dtype)
        assert got.dtype == np.bool_ and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert raw.bit_generator.state == drawn.bit_generator.state
    np.testing.assert_array_equal(raw.random(7), drawn.random(7))


def test_another_bit_generator_takes_the_draws() -> None:
    drawn = np.random.Generator(np.random.MT19937(3))
    raw = np.random.Generator(np.random.MT19937(3))
    want = drawn.random((6, 4), dtype=np.float32) >= 0.4
    np.testing.assert_array_equal(kept(raw, (6, 4), 0.4, np.float32), want)
    np.testing.assert_array_equal(raw.random(7), drawn.random(7))
