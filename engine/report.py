"""What a run folder says about its training: History as CSV, curves as PNG, and a diagnosis.

The PNG is drawn here with NumPy and written with zlib (no plotting library at runtime), so every
run folder gets its picture. `braille_chart` gives the same curves as text for a terminal.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.saving import atomic_write_bytes

HISTORY_CSV = "history.csv"
CURVES_PNG = "training_curves.png"
History = Mapping[str, Sequence[float]]


# ----- CSV ---------------------------------------------------------------------------------
def metric_names(history: History) -> list[str]:
    """Base metric names in History order (`loss` first), validation twins folded in."""
    names = [k for k in history if not k.startswith("val_")]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in names]
    return sorted(names, key=lambda n: (n != "loss", names.index(n)))


def history_csv(history: History) -> str:
    """`epoch,<key>...` with one row per epoch (1-based); values printed with repr precision."""
    keys = list(history)
    epochs = max((len(v) for v in history.values()), default=0)
    out = io.StringIO()
    out.write(",".join(["epoch", *keys]) + "\n")
    for i in range(epochs):
        cells = [repr(float(history[k][i])) if i < len(history[k]) else "" for k in keys]
        out.write(",".join([str(i + 1), *cells]) + "\n")
    return out.getvalue()


# ----- diagnosis ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Diagnosis:
    """What the loss curves show: `kind` is overfitting, underfitting or none."""

    kind: str
    message: str
    best_epoch: int | None = None


OVERFIT_PATIENCE = 3
FLAT_TOLERANCE = 0.02
UNDERFIT_TOTAL_DROP = 0.1


def diagnose(history: History, patience: int = OVERFIT_PATIENCE) -> Diagnosis:
    """Name the pattern only when it is clear; otherwise say the curves show nothing special."""
    loss = [float(v) for v in history.get("loss", [])]
    val = [float(v) for v in history.get("val_loss", [])]
    for rule in (_overfitting, _underfitting):
        found = rule(loss, val, patience)
        if found is not None:
            return found
    return Diagnosis("none", "no clear overfitting or underfitting in the loss curves")


def _overfitting(loss: list[float], val: list[float], patience: int) -> Diagnosis | None:
    """Validation loss rose for `patience` epochs in a row while training loss fell."""
    n = min(len(loss), len(val))
    if n <= patience:
        return None
    best = int(np.argmin(val[:n]))
    tail = range(n - patience, n)
    val_rising = all(val[i] > val[i - 1] for i in tail)
    train_falling = all(loss[i] < loss[i - 1] for i in tail)
    if not (val_rising and train_falling and best < n - 1):
        return None
    return Diagnosis(
        "overfitting",
        f"overfitting: validation loss rose for the last {patience} epochs while training loss "
        f"fell; it was best at epoch {best + 1} ({val[best]:.4g})",
        best + 1,
    )


def _underfitting(loss: list[float], val: list[float], patience: int) -> Diagnosis | None:
    """Both losses stayed near where they started (the model learned little) and are flat now."""
    series = [s for s in (loss, val) if len(s) > patience]
    if not series or len(loss) <= patience:
        return None
    stuck = all(
        _change(s) < UNDERFIT_TOTAL_DROP and _change(s[len(s) // 2 :]) < FLAT_TOLERANCE
        for s in series
    )
    if not stuck:
        return None
    return Diagnosis(
        "underfitting",
        "underfitting: training and validation loss are both high and flat; try a larger model, "
        "a higher learning rate or more epochs",
    )


def _change(series: list[float]) -> float:
    """Relative change from the first value to the last."""
    return abs(series[0] - series[-1]) / max(abs(series[0]), 1e-12)


# ----- terminal chart ----------------------------------------------------------------------
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


# ----- PNG ---------------------------------------------------------------------------------
TRAIN_COLOR = (31, 119, 180)
VAL_COLOR = (255, 127, 14)
_INK = (40, 40, 40)
_GRID = (225, 225, 225)
_PANEL_W, _PANEL_H = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 34, 30

# A 5x7 bitmap font: each glyph is seven rows, five bits per row (high bit on the left).
_FONT: dict[str, tuple[int, ...]] = {
    "0": (14, 17, 19, 21, 25, 17, 14),
    "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2),
    "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14),
    "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14),
    "9": (14, 17, 17, 15, 1, 2, 12),
    "A": (14, 17, 17, 31, 17, 17, 17),
    "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14),
    "D": (28, 18, 17, 17, 17, 18, 28),
    "E": (31, 16, 16, 30, 16, 16, 31),
    "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15),
    "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14),
    "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17),
    "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17),
    "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14),
    "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13),
    "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30),
    "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14),
    "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10),
    "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 17, 10, 4, 4, 4),
    "Z": (31, 1, 2, 4, 8, 16, 31),
    ".": (0, 0, 0, 0, 0, 12, 12),
    "-": (0, 0, 0, 31, 0, 0, 0),
    "+": (0, 4, 4, 31, 4, 4, 0),
    "_": (0, 0, 0, 0, 0, 0, 31),
    ":": (0, 12, 12, 0, 12, 12, 0),
    "(": (2, 4, 8, 8, 8, 4, 2),
    ")": (8, 4, 2, 2, 2, 4, 8),
    "/": (0, 1, 2, 4, 8, 16, 0),
    "%": (24, 25, 2, 4, 8, 19, 3),
    " ": (0, 0, 0, 0, 0, 0, 0),
}
_UNKNOWN_GLYPH = (31, 17, 17, 17, 17, 17, 31)


class _Canvas:
    """An RGB image with the few drawing operations a line chart needs."""

    def __init__(self, width: int, height: int) -> None:
        self.pixels = np.full((height, width, 3), 255, dtype=np.uint8)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
        h, w = self.pixels.shape[:2]
        self.pixels[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)] = color

    def line(
        self, p0: tuple[float, float], p1: tuple[float, float], color: tuple[int, int, int]
    ) -> None:
        """A two-pixel-wide segment."""
        (x0, y0), (x1, y1) = p0, p1
        t = np.linspace(0.0, 1.0, int(max(abs(x1 - x0), abs(y1 - y0))) + 2)
        xs = np.rint(x0 + (x1 - x0) * t).astype(np.int64)
        ys = np.rint(y0 + (y1 - y0) * t).astype(np.int64)
        h, w = self.pixels.shape[:2]
        for dx in (-1, 0):
            for dy in (-1, 0):
                px, py = xs + dx, ys + dy
                keep = (px >= 0) & (px < w) & (py >= 0) & (py < h)
                self.pixels[py[keep], px[keep]] = color

    def text(self, x: int, y: int, s: str, color: tuple[int, int, int] = _INK) -> None:
        h, w = self.pixels.shape[:2]
        for k, ch in enumerate(s.upper()):
            left = x + k * 6
            if left >= 0 and y >= 0 and left + 5 <= w and y + 7 <= h:
                self.pixels[y : y + 7, left : left + 5][_glyph_mask(ch)] = color


def _glyph_mask(ch: str) -> np.ndarray:
    rows = _FONT.get(ch, _UNKNOWN_GLYPH)
    return np.array([[bits >> (4 - col) & 1 for col in range(5)] for bits in rows], dtype=bool)


def _text_width(s: str) -> int:
    return 6 * len(s) - 1


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def _draw_panel(canvas: _Canvas, top: int, name: str, history: History) -> None:
    x0, x1 = _LEFT, _PANEL_W - _RIGHT
    y0, y1 = top + _TOP, top + _PANEL_H - _BOTTOM
    lines = [(history.get(name, []), TRAIN_COLOR), (history.get(f"val_{name}", []), VAL_COLOR)]
    values = [float(v) for data, _ in lines for v in data if math.isfinite(float(v))]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    epochs = max(len(data) for data, _ in lines)
    canvas.text(x0, top + 10, name)

    def px(i: int, v: float) -> tuple[float, float]:
        x = x0 + (x1 - x0) * (i / max(epochs - 1, 1))
        return x, y1 - (y1 - y0) * (v - lo) / (hi - lo)

    for tick in _ticks(lo, hi):
        _, y = px(0, tick)
        canvas.rect(x0, round(y), x1, round(y) + 1, _GRID)
        label = f"{tick:.3g}"
        canvas.text(x0 - 6 - _text_width(label), round(y) - 3, label)
    for tick_epoch in sorted({round(t) for t in _ticks(1, max(epochs, 1))}):
        x, _ = px(tick_epoch - 1, lo)
        canvas.rect(round(x), y1, round(x) + 1, y1 + 4, _INK)
        label = str(tick_epoch)
        canvas.text(round(x) - _text_width(label) // 2, y1 + 7, label)
    canvas.rect(x0, y0, x0 + 1, y1 + 1, _INK)
    canvas.rect(x0, y1, x1 + 1, y1 + 1, _INK)
    canvas.text(x1 - _text_width("epoch"), y1 + 17, "epoch")
    for data, color in lines:
        points = [px(i, float(v)) for i, v in enumerate(data) if math.isfinite(float(v))]
        for a, b in zip(points, points[1:], strict=False):
            canvas.line(a, b, color)
        if len(points) == 1:
            canvas.line(points[0], points[0], color)
    legend_x = x1 - 170
    for label, color in (("train", TRAIN_COLOR), ("validation", VAL_COLOR)):
        canvas.rect(legend_x, top + 10, legend_x + 12, top + 17, color)
        canvas.text(legend_x + 16, top + 10, label)
        legend_x += 16 + _text_width(label) + 14


def curves_image(history: History) -> np.ndarray:
    """One panel per metric (loss first), train and validation per epoch, as an RGB array."""
    names = metric_names(history) or ["loss"]
    canvas = _Canvas(_PANEL_W, _PANEL_H * len(names))
    for i, name in enumerate(names):
        _draw_panel(canvas, i * _PANEL_H, name, history)
    return canvas.pixels


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode an (height, width, 3) uint8 array as a PNG (8-bit RGB, no filtering)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def write_run_report(run_dir: str | os.PathLike[str], history: History) -> tuple[Path, Path]:
    """Write `history.csv` and `training_curves.png` into a run folder, each atomically."""
    folder = Path(run_dir)
    csv_path, png_path = folder / HISTORY_CSV, folder / CURVES_PNG
    atomic_write_bytes(csv_path, history_csv(history).encode("utf-8"))
    atomic_write_bytes(png_path, png_bytes(curves_image(history)))
    return csv_path, png_path
