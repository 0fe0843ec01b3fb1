"""Mean and variance of data seen batch by batch, in float64: each batch's moments merged into
the running ones by Chan, Golub and LeVeque's pairwise update, which stays accurate where
summing squares would cancel (a large mean, many rows). Normalization adapts on a stream with
it, over every row rather than the first that fit in memory; ranks of a data-parallel run
merge their shards' moments the same way."""

from __future__ import annotations

from engine.lazy import numpy as np


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
        self.merge(n, mean, m2)

    def merge(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Add `n` values whose mean and M2 are given (a batch, or another rank's share)."""
        if n == 0:
            return
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

    def packed(self, shape: tuple[int, ...]) -> np.ndarray:
        """count, mean and M2 as one float64 array (zeros when empty), to send to other ranks."""
        size = int(np.prod(shape, dtype=np.int64))
        mean = np.zeros(size) if self.mean is None else self.mean.reshape(-1)
        m2 = np.zeros(size) if self.m2 is None else self.m2.reshape(-1)
        return np.concatenate([[float(self.count)], mean, m2])

    @classmethod
    def merged(cls, packs: np.ndarray, shape: tuple[int, ...]) -> Moments:
        """The moments of every rank's `packed()` (one per row), merged in rank order: the
        same bits on every rank."""
        size = int(np.prod(shape, dtype=np.int64))
        whole = cls()
        for pack in packs:
            mean, m2 = pack[1 : 1 + size].reshape(shape), pack[1 + size :].reshape(shape)
            whole.merge(int(pack[0]), mean, m2)
        return whole
