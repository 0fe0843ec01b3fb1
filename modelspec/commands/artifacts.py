"""The `export` and `report` commands: a trained model as ONNX or Keras, a run's curves.

A damaged or missing artifact is one line on stderr and exit 2; a model with a layer the format
cannot express is one line naming the layer and exit 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from engine.saving import Artifact

SERIES_STYLES = {1: "blue", 2: "dark_orange", 3: "magenta"}
# Solid and dashed, so the legend tells train from validation without colour too.
SERIES_MARKS = ("━", "┄")


class ExportFormat(str, Enum):
    onnx = "onnx"
    keras = "keras"


@contextmanager
def _user_errors(err: Console) -> Iterator[None]:
    """Turn damaged artifacts (exit 2) and unexportable models (exit 1) into one line."""
    from engine import saving
    from engine.export_onnx import ExportError
    from engine.keras_io.errors import KerasArchiveError, KerasUnsupportedError

    try:
        yield
    except (saving.ArtifactError, KerasArchiveError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (ExportError, KerasUnsupportedError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


def export(
    model: Annotated[Path, typer.Argument(help="A run folder or a model.msz file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the file.")],
    format: Annotated[  # noqa: A002  (the CLI flag is --format)
        ExportFormat, typer.Option("--format", help="The exchange format.")
    ] = ExportFormat.onnx,
    opset: Annotated[int, typer.Option(help="ONNX opset version, 13 to 17.")] = 17,
) -> None:
    """Export a trained model for use outside modelspec (ONNX needs the `onnx` extra, Keras
    the `keras` extra)."""
    from engine.export_onnx import export_onnx
    from engine.keras_io.exporter import export_keras

    console, err = Console(), Console(stderr=True)
    with _user_errors(err):
        if format is ExportFormat.keras:
            written = export_keras(model, output)
        else:
            written = export_onnx(model, output, opset=opset)
    console.print(f"Wrote {written}", highlight=False)


def _summary(source: str, artifact: Artifact) -> Table:
    from modelspec.run_summary import summary_rows

    table = Table(show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a digest folds whole rather than losing its end
    for key, value in summary_rows(source, artifact):
        table.add_row(key, Text(value))
    return table


def _final_metrics(artifact: Artifact) -> Table:
    from modelspec.run_summary import final_metrics

    table = Table(title="Final metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in final_metrics(artifact).items():
        table.add_row(name, f"{value:.6g}")
    return table


def _chart(name: str, history: Mapping[str, list[float]], width: int) -> Text:
    from modelspec.pictures.terminal import braille_chart

    series = {
        label: history[key]
        for label, key in (("train", name), ("validation", f"val_{name}"))
        if key in history
    }
    values = [v for s in series.values() for v in s if math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
    text = Text(f"{name}  ", style="bold")
    for index, label in enumerate(series):
        text.append(f"{SERIES_MARKS[index]} {label}  ", style=SERIES_STYLES[1 << index])
    text.append("\n")
    rows = braille_chart(series, width=width)
    for r, row in enumerate(rows):
        edge = (
            f"{hi:>10.4g} ┤"
            if r == 0
            else f"{lo:>10.4g} ┤"
            if r == len(rows) - 1
            else " " * 11 + "│"
        )
        text.append(edge)
        for char, mask in row:
            text.append(char, style=SERIES_STYLES.get(mask))
        text.append("\n")
    epochs = max((len(s) for s in series.values()), default=0)
    text.append(" " * 12 + "epoch 1" + f"epoch {epochs}".rjust(max(width - 7, 0)) + "\n")
    return text


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or a model.msz file).")],
    width: Annotated[int, typer.Option(help="Chart width in characters.", min=10)] = 60,
    html: Annotated[
        bool, typer.Option("--html", help="Write one self-contained HTML page instead.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The page (default RUN/report.html).")
    ] = None,
) -> None:
    """Print a run's summary, final metrics, curves and diagnosis; refresh its curves PNG."""
    from modelspec import history as run_history
    from modelspec.run_summary import load_run

    console, err = Console(), Console(stderr=True)
    with _user_errors(err):
        source, artifact = load_run(run_dir)
    if html:
        _write_html(console, run_dir, output, source, artifact)
        _refresh_files(console, run_dir, artifact.history)
        return
    console.print(f"Run {run_dir}", highlight=False, markup=False, soft_wrap=True)
    console.print(_summary(source, artifact))
    console.print(_final_metrics(artifact))
    history = artifact.history
    for name in run_history.metric_names(history):
        console.print(_chart(name, history, width))
    diagnosis = run_history.diagnose(history)
    style = "green" if diagnosis.kind == "none" else "yellow"
    console.print(Text(f"Curves: {diagnosis.message}", style=style))
    _refresh_files(console, run_dir, history)


def _write_html(
    console: Console, run_dir: Path, output: Path | None, source: str, artifact: Artifact
) -> None:
    from engine.atomic import atomic_write_bytes
    from modelspec.pictures.html_report import html_page

    folder = run_dir if run_dir.is_dir() else run_dir.parent
    page = output or folder / "report.html"
    atomic_write_bytes(page, html_page(source, str(run_dir), artifact).encode("utf-8"))
    console.print(f"Wrote {page}", highlight=False, markup=False, soft_wrap=True)


def _refresh_files(console: Console, run_dir: Path, history: Mapping[str, list[float]]) -> None:
    """Rewrite the run folder's CSV and curves PNG from the artifact's History."""
    from modelspec.run_report import write_run_report

    folder = run_dir if run_dir.is_dir() else run_dir.parent
    written = write_run_report(folder, history)
    message = f"note: {written.note}" if written.note else f"Wrote {written.png}"
    console.print(message, highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `export` and `report` to the modelspec app."""
    app.command("export")(export)
    app.command("report")(report)
