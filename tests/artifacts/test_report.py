"""The run report: History CSV, the matplotlib curves, the text chart and the diagnosis."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from modelspec import history as report
from modelspec import run_report
from modelspec.pictures import curves, terminal

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


def _read_png(path: Path) -> np.ndarray:
    """The picture as uint8 RGB, read by matplotlib's own PNG reader."""
    image = pytest.importorskip("matplotlib.image")
    return (image.imread(str(path))[..., :3] * 255).round().astype(np.uint8)


def _has_color(pixels: np.ndarray, hex_color: str) -> bool:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], np.int16)
    return bool((np.abs(pixels.astype(np.int16) - rgb).max(axis=-1) <= 2).any())


def _panel_px() -> tuple[int, int]:
    return round(curves.PANEL_SIZE[1] * curves.DPI), round(curves.PANEL_SIZE[0] * curves.DPI)


def test_png_has_a_panel_per_metric_and_both_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    history = {"loss": FALLING, "val_loss": OVERFIT_VAL, "accuracy": FALLING[::-1]}
    written = run_report.write_run_report(tmp_path, history)
    assert written.png is not None and written.note is None
    pixels = _read_png(written.png)
    height, width = _panel_px()
    assert pixels.shape == (height, 2 * width, 3)
    left, right = pixels[:, :width], pixels[:, width:]
    assert _has_color(left, curves.TRAIN_STYLE["color"])
    assert _has_color(left, curves.VAL_STYLE["color"])
    assert _has_color(right, curves.TRAIN_STYLE["color"])
    assert not _has_color(right, curves.VAL_STYLE["color"])
    assert written.csv.read_text().startswith("epoch,loss,val_loss,accuracy\n")


def test_multi_output_runs_get_a_row_of_panels_per_output() -> None:
    history = {
        "loss": FALLING,
        "digit_accuracy": FALLING,
        "digit_loss": FALLING,
        "parity_loss": FALLING,
        "val_parity_loss": FALLING,
    }
    assert report.panel_groups(history) == [
        ("model", ["loss"]),
        ("digit", ["digit_loss", "digit_accuracy"]),
        ("parity", ["parity_loss"]),
    ]


def test_multi_output_png_is_a_grid(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    history = {"loss": FALLING, "a_loss": FALLING, "a_mae": FALLING, "b_loss": FALLING}
    written = run_report.write_run_report(tmp_path, history)
    assert written.png is not None
    height, width = _panel_px()
    assert _read_png(written.png).shape == (3 * height, 2 * width, 3)


@pytest.mark.parametrize(
    ("history", "best"),
    [
        ({"loss": FALLING, "val_loss": OVERFIT_VAL}, int(np.argmin(OVERFIT_VAL)) + 1),
        ({"loss": [3.0, float("nan"), 1.0, 2.0]}, 3),
        ({"loss": [float("nan")]}, None),
        ({}, None),
    ],
)
def test_best_epoch_is_the_lowest_validation_loss(
    history: dict[str, list[float]], best: int | None
) -> None:
    assert report.best_epoch(history) == best


def test_png_is_deterministic_and_survives_odd_values() -> None:
    pytest.importorskip("matplotlib")
    history = {"loss": [float("nan"), 1.0, float("inf"), 0.5], "val_loss": [2.0]}
    assert curves.curves_png(history) == curves.curves_png(history)
    assert curves.curves_png({"loss": [3.0, 3.0, 3.0]}).startswith(b"\x89PNG")
    assert curves.curves_png({}).startswith(b"\x89PNG")


def test_without_matplotlib_the_csv_is_written_and_the_note_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    written = run_report.write_run_report(tmp_path, {"loss": FALLING})
    assert written.png is None and written.csv.is_file()
    assert written.note is not None
    assert "matplotlib" in written.note and "modelspec[plots]" in written.note
    assert not (tmp_path / run_report.CURVES_PNG).exists()


def test_braille_chart_marks_each_series() -> None:
    chart = terminal.braille_chart({"train": [1.0, 0.0], "val": [0.0, 1.0]}, width=10, height=4)
    assert len(chart) == 4 and all(len(row) == 10 for row in chart)
    assert chart[-1][0][1] & 2 and chart[0][-1][1] & 2 and chart[-1][-1][1] & 1
    assert all(0x2800 <= ord(c) <= 0x28FF for row in chart for c, _ in row)


def test_braille_chart_skips_non_finite_values() -> None:
    chart = terminal.braille_chart({"train": [1.0, float("nan"), float("inf"), 0.0]}, width=8)
    marked = [c for row in chart for c, mask in row if mask]
    assert marked and all(0x2800 <= ord(c) <= 0x28FF for c in marked)
