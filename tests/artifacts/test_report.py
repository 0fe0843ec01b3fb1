"""The run report: History CSV, the built-in PNG writer, the text chart and the diagnosis."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine import report

EPOCHS = 12
FALLING = [1.0 / (i + 1) for i in range(EPOCHS)]
OVERFIT_VAL = [1.0 / (i + 1) + 0.02 * max(0, i - 5) ** 2 for i in range(EPOCHS)]


def _history(**series: list[float]) -> dict[str, list[float]]:
    return dict(series)


@pytest.mark.parametrize(
    ("history", "kind", "best_epoch"),
    [
        (_history(loss=FALLING, val_loss=OVERFIT_VAL), "overfitting", 7),
        (_history(loss=[2.3] * EPOCHS, val_loss=[2.31] * EPOCHS), "underfitting", None),
        (_history(loss=[2.3 - 0.001 * i for i in range(EPOCHS)]), "underfitting", None),
        (_history(loss=FALLING, val_loss=[v * 1.1 for v in FALLING]), "none", None),
        (_history(loss=FALLING), "none", None),
        (_history(loss=[1.0, 1.0], val_loss=[1.0, 1.2]), "none", None),
        (_history(), "none", None),
    ],
    ids=["overfit", "flat-high", "flat-train-only", "healthy", "no-val", "too-short", "empty"],
)
def test_diagnosis(history: dict[str, list[float]], kind: str, best_epoch: int | None) -> None:
    found = report.diagnose(history)
    assert (found.kind, found.best_epoch) == (kind, best_epoch)
    if best_epoch is not None:
        assert f"epoch {best_epoch}" in found.message


def test_overfitting_needs_training_loss_falling() -> None:
    rising = [v + 0.5 for v in OVERFIT_VAL]
    assert report.diagnose({"loss": rising, "val_loss": OVERFIT_VAL}).kind != "overfitting"


def test_csv_has_one_row_per_epoch_and_exact_values() -> None:
    history = {"loss": [0.1 + 1e-9, 0.2], "val_loss": [0.3, 0.4], "accuracy": [0.5, 1.0]}
    rows = list(csv.reader(io.StringIO(report.history_csv(history))))
    assert rows[0] == ["epoch", "loss", "val_loss", "accuracy"]
    assert [r[0] for r in rows[1:]] == ["1", "2"]
    assert float(rows[1][1]) == 0.1 + 1e-9


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ({"val_loss": [1.0], "loss": [1.0], "accuracy": [0.5]}, ["loss", "accuracy"]),
        ({"accuracy": [1.0], "loss": [1.0], "val_mae": [1.0]}, ["loss", "accuracy", "mae"]),
    ],
)
def test_metric_names_put_loss_first(history: dict[str, list[float]], expected: list[str]) -> None:
    assert report.metric_names(history) == expected


def _decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG reader for what png_bytes writes (8-bit RGB, filter 0)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, size = 8, b"", (0, 0)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        tag, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(tag + body)
        if tag == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif tag == b"IDAT":
            idat += body
        at += 12 + length
    width, height = size
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def _has_color(pixels: np.ndarray, color: tuple[int, int, int]) -> bool:
    return bool((pixels == np.array(color, np.uint8)).all(axis=-1).any())


def test_png_has_a_panel_per_metric_and_both_curves(tmp_path: Path) -> None:
    history = {"loss": FALLING, "val_loss": OVERFIT_VAL, "accuracy": FALLING[::-1]}
    csv_path, png_path = report.write_run_report(tmp_path, history)
    pixels = _decode_png(png_path.read_bytes())
    assert pixels.shape == (2 * 220, 640, 3)
    top, bottom = pixels[:220], pixels[220:]
    assert _has_color(top, report.TRAIN_COLOR) and _has_color(top, report.VAL_COLOR)
    assert _has_color(bottom, report.TRAIN_COLOR)
    assert csv_path.read_text().startswith("epoch,loss,val_loss,accuracy\n")


def test_png_is_readable_by_matplotlib(tmp_path: Path) -> None:
    image = pytest.importorskip("matplotlib.image")
    _, png_path = report.write_run_report(tmp_path, {"loss": FALLING, "val_loss": FALLING})
    ours = _decode_png(png_path.read_bytes())
    theirs = image.imread(str(png_path))
    np.testing.assert_array_equal((theirs[..., :3] * 255).round().astype(np.uint8), ours)


def test_png_is_deterministic_and_survives_odd_values() -> None:
    history = {"loss": [float("nan"), 1.0, float("inf"), 0.5], "val_loss": [2.0]}
    assert report.png_bytes(report.curves_image(history)) == report.png_bytes(
        report.curves_image(history)
    )
    report.curves_image({"loss": [3.0, 3.0, 3.0]})
    report.curves_image({})


def test_braille_chart_marks_each_series() -> None:
    chart = report.braille_chart({"train": [1.0, 0.0], "val": [0.0, 1.0]}, width=10, height=4)
    assert len(chart) == 4 and all(len(row) == 10 for row in chart)
    assert chart[-1][0][1] & 2 and chart[0][-1][1] & 2 and chart[-1][-1][1] & 1
    assert all(0x2800 <= ord(c) <= 0x28FF for row in chart for c, _ in row)


def test_braille_chart_skips_non_finite_values() -> None:
    chart = report.braille_chart({"train": [1.0, float("nan"), float("inf"), 0.0]}, width=8)
    marked = [c for row in chart for c, mask in row if mask]
    assert marked and all(0x2800 <= ord(c) <= 0x28FF for c in marked)
