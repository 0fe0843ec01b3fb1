"""The files a run folder gets after training: `history.csv` and `training_curves.png`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import atomic_write_bytes
from modelspec.extras import MissingExtraError
from modelspec.history import History, history_csv
from modelspec.pictures.curves import curves_png

HISTORY_CSV = "history.csv"
CURVES_PNG = "training_curves.png"


@dataclass(frozen=True)
class RunReport:
    """What was written; `note` says why the PNG was not, when it was not."""

    csv: Path
    png: Path | None
    note: str | None = None


def write_run_report(run_dir: str | os.PathLike[str], history: History) -> RunReport:
    """Write the CSV and (with matplotlib) the curves PNG into a run folder, each atomically."""
    folder = Path(run_dir)
    csv_path = folder / HISTORY_CSV
    atomic_write_bytes(csv_path, history_csv(history).encode("utf-8"))
    try:
        png = curves_png(history)
    except MissingExtraError as exc:
        return RunReport(csv_path, None, f"no {CURVES_PNG} written: {exc}")
    atomic_write_bytes(folder / CURVES_PNG, png)
    return RunReport(csv_path, folder / CURVES_PNG)
