"""The `examples` command: list the example specs shipped with the package, or copy one out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def _listing() -> Table:
    from modelspec import example_specs

    table = Table(title="Example specs", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("what it trains", overflow="fold")
    for example in example_specs.examples():
        table.add_row(example.name, example.description)
    return table


def examples(
    name: Annotated[
        str | None, typer.Argument(help="An example to copy (default: list them all).")
    ] = None,
    to: Annotated[
        Path, typer.Option("--to", help="Folder to copy the spec and its data into.")
    ] = Path("."),
) -> None:
    """List the example specs, or copy one with its data into a folder, ready to train."""
    from modelspec import example_specs

    console = Console(highlight=False)
    if name is None:
        console.print(_listing())
        console.print("Copy one with `modelspec examples NAME --to DIR`.", markup=False)
        return
    try:
        example = example_specs.find(name)
        written = example_specs.copy_example(example, to)
    except example_specs.ExampleError as exc:
        Console(stderr=True).print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    for path in written:
        console.print(f"Wrote {path}", markup=False, soft_wrap=True)
    spec = os.path.normpath(to / example.files[0])
    console.print(f"Train it with: modelspec train {spec}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `examples` to the modelspec app."""
    app.command("examples")(examples)
