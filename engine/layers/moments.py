"""Mean and variance of data seen batch by batch, in float64: each batch's moments merged into
the running ones by Chan, Golub and LeVeque's pairwise update, which stays accurate where
summing squares would cancel (a large mean, many rows). Normalization adapts on a stream with
it, over every row rather than the first that fit in memory."""

from __future__ import annotations

import numpy as np


class Moments:
    """Running count, mean and sum of squared deviations (M2) per kept position."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, batch: np.ndarray, axes: tuple[int, ...]) -> None:
        """Merge the moments of `batch` taken over `axes`."""
        batch = np.asarray(batch, dtype=np.float64)
        n = int(np.prod([batch.shape[a] for a in axes], dtype=np.int64))
        if n == 0:
            return
        mean = batch.mean(axis=axes)
        m2 = ((batch - np.expand_dims(mean, axes)) ** 2).sum(axis=axes)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def variance(self) -> np.ndarray:
        """The population variance (Keras's adapt divides by the count)."""
        if self.m2 is None:
            raise ValueError("no data to take a variance of")
        return self.m2 / self.count
