"""Training curves as braille text for a terminal: two dots across and four down per cell."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def braille_chart(
    series: Mapping[str, Sequence[float]], width: int = 60, height: int = 8
) -> list[list[tuple[str, int]]]:
    """Rows of (character, mask) cells; bit i of mask is set where series i drew a dot."""
    values = [v for s in series.values() for v in s if math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    cols, rows = width * 2, height * 4
    dots = np.zeros((rows, cols), dtype=np.int64)
    for index, data in enumerate(series.values()):
        points = _scaled(list(data), lo, hi, cols - 1, rows - 1)
        for (x0, y0), (x1, y1) in zip(points, points[1:] or points, strict=False):
            for x, y in _segment(x0, y0, x1, y1):
                dots[rows - 1 - y, x] |= 1 << index
    chart = []
    for r in range(height):
        line = []
        for c in range(width):
            block = dots[r * 4 : r * 4 + 4, c * 2 : c * 2 + 2]
            code = sum(_BRAILLE_BITS[i][j] for i in range(4) for j in range(2) if block[i, j])
            line.append((chr(0x2800 + code), int(np.bitwise_or.reduce(block.ravel()))))
        chart.append(line)
    return chart


def _scaled(data: list[float], lo: float, hi: float, xmax: int, ymax: int) -> list[tuple[int, int]]:
    span = hi - lo if hi > lo else 1.0
    steps = max(len(data) - 1, 1)
    return [
        (round(i * xmax / steps), round((v - lo) / span * ymax))
        for i, v in enumerate(data)
        if math.isfinite(v)
    ]


def _segment(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    n = max(abs(x1 - x0), abs(y1 - y0), 1)
    return [(round(x0 + (x1 - x0) * t / n), round(y0 + (y1 - y0) * t / n)) for t in range(n + 1)]
