"""SpatialDropout's shared draws and GaussianNoise's statistics (beyond the table's checks)."""

from __future__ import annotations

import numpy as np

from engine.layers.base import CallContext
from engine.layers.noise import GaussianNoise, SpatialDropout1D, SpatialDropout2D


def test_spatial_dropout_drops_whole_channels() -> None:
    x = np.ones((4, 20, 8), np.float32)
    y, _ = SpatialDropout1D(0.5).forward(
        [], x, CallContext(training=True, rng=np.random.default_rng(0))
    )
    assert (y == y[:, :1, :]).all() and (y == 0).any() and (y == 2).any()


def test_spatial_dropout2d_shares_the_draw_over_both_axes() -> None:
    x = np.ones((3, 5, 6, 8), np.float32)
    y, _ = SpatialDropout2D(0.5).forward(
        [], x, CallContext(training=True, rng=np.random.default_rng(1))
    )
    assert (y == y[:, :1, :1, :]).all() and (y == 0).any() and (y == 2).any()


def test_gaussian_noise_has_its_stddev_in_training_only() -> None:
    x = np.zeros((200, 50), np.float32)
    layer = GaussianNoise(0.3, seed=4)
    y, _ = layer.forward([], x, CallContext(training=True))
    assert abs(float(y.std()) - 0.3) < 0.01 and abs(float(y.mean())) < 0.01
    same, _ = layer.forward([], x, CallContext(training=False))
    assert same is x
