"""The `graph` command: a model's architecture as a diagram (SVG, PNG or DOT)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from modelspec import report as reporters


def graph(
    source: Annotated[Path, typer.Argument(help="A spec file, a run folder or a model.msz file.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="model.svg, model.png or model.dot.")
    ] = Path("model.svg"),
    show_shapes: Annotated[bool, typer.Option(help="Print each layer's output shape.")] = False,
    show_params: Annotated[bool, typer.Option(help="Print each layer's parameter count.")] = False,
) -> None:
    """Draw the architecture: a box per layer and input, arrows for the connections."""
    from engine.atomic import atomic_write_bytes
    from engine.saving import ArtifactError, read_artifact
    from modelspec.check import check_spec
    from modelspec.extras import MissingExtraError
    from modelspec.pictures.graph_file import DiagramError, diagram_from, render, stored_diagram

    console, err = Console(), Console(stderr=True)

    def fail(message: str, code: int) -> NoReturn:
        err.print(message, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(code)

    if not source.exists():
        fail(f"error: {source}: no such spec file, run folder or model file", 2)
    try:
        if source.is_dir() or source.suffix == ".msz":
            diagram = stored_diagram(read_artifact(source).spec, str(source))
        else:
            report = check_spec(source)
            if report.errors:
                text = reporters.text(report.diagnostics, 1).rstrip()
                fail(text, 2 if report.unreadable else 1)
            diagram = diagram_from(report)
        rendered = render(diagram, output.suffix.lstrip(".").lower(), show_shapes, show_params)
    except ArtifactError as exc:
        fail(f"error: {exc}", 2)
    except (DiagramError, MissingExtraError) as exc:
        fail(f"error: {exc}", 1)
    atomic_write_bytes(output, rendered.data)
    console.print(f"Wrote {output} ({rendered.renderer})", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add `graph` to the modelspec app."""
    app.command("graph")(graph)
