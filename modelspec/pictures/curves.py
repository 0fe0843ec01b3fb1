"""Training curves as a PNG drawn with matplotlib: a panel per metric, a row per output.

Train is a solid line with round marks and validation a dashed line with square marks, so the
two differ without colour; a dotted vertical line marks the best epoch (lowest validation loss).
"""

from __future__ import annotations

import io
import math
from typing import Any

from modelspec.extras import require
from modelspec.history import History, best_epoch, panel_groups

PANEL_SIZE = (4.2, 2.8)
DPI = 100
TRAIN_STYLE = {"color": "#1f77b4", "linestyle": "-", "marker": "o", "label": "train"}
VAL_STYLE = {"color": "#ff7f0e", "linestyle": "--", "marker": "s", "label": "validation"}


def curves_png(history: History) -> bytes:
    """The curves as PNG bytes; the same History gives the same bytes."""
    require("matplotlib", "plots", "Drawing training curves")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = panel_groups(history)
    rows, cols = len(groups), max(len(names) for _, names in groups)
    figure = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    best = best_epoch(history)
    for r, (title, names) in enumerate(groups):
        for c in range(cols):
            if c < len(names):
                _panel(axes[r][c], history, names[c], title, best)
            else:
                axes[r][c].set_visible(False)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _panel(ax: Any, history: History, name: str, group: str, best: int | None) -> None:
    from matplotlib.ticker import MaxNLocator

    for key, style in ((name, TRAIN_STYLE), (f"val_{name}", VAL_STYLE)):
        values = [float(v) for v in history.get(key, [])]
        points = [(i + 1, v) for i, v in enumerate(values) if math.isfinite(v)]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, markersize=3, linewidth=1.5, **style)
    if best is not None:
        ax.axvline(best, color="#555555", linestyle=":", linewidth=1, label=f"best epoch {best}")
    per_output = group not in ("", "model")
    ax.set_title(f"{group}: {name[len(group) + 1 :]}" if per_output else name, fontsize=10)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.grid(True, color="#e5e5e5")
    ax.tick_params(labelsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False)
