"""Reading a training History: metric names, CSV, best epoch and what the curves show."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

History = Mapping[str, Sequence[float]]


# ----- CSV ---------------------------------------------------------------------------------
def metric_names(history: History) -> list[str]:
    """Base metric names in History order (`loss` first), validation twins folded in."""
    names = [k for k in history if not k.startswith("val_")]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in names]
    return sorted(names, key=lambda n: (n != "loss", names.index(n)))


def output_names(history: History) -> list[str]:
    """The outputs of a multi-output model, from its per-output losses (`<output>_loss`)."""
    return [
        n[: -len("_loss")] for n in metric_names(history) if n.endswith("_loss") and n != "loss"
    ]


def panel_groups(history: History) -> list[tuple[str, list[str]]]:
    """(title, metric names) per row of panels: the whole model first, then one row per output."""
    names = metric_names(history) or ["loss"]
    outputs = output_names(history)
    if not outputs:
        return [("", names)]
    groups = [(o, _loss_first(o, [n for n in names if n.startswith(f"{o}_")])) for o in outputs]
    claimed = {n for _, group in groups for n in group}
    return [("model", [n for n in names if n not in claimed]), *groups]


def _loss_first(output: str, names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: n != f"{output}_loss")


def best_epoch(history: History) -> int | None:
    """The 1-based epoch with the lowest validation loss (training loss without validation)."""
    for key in ("val_loss", "loss"):
        values = np.asarray(history.get(key, []), dtype=np.float64)
        finite = np.isfinite(values)
        if finite.any():
            return int(np.argmin(np.where(finite, values, np.inf))) + 1
    return None


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
