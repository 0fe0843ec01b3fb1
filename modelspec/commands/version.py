"""`modelspec --version`: the release, and which compiled kernel modules this install runs.

Without a C compiler at install time (or with `MODELSPEC_NATIVE=0`) the NumPy composites run:
the same results, slower. A user chasing speed sees here which modules are missing.
"""

from __future__ import annotations

from typing import Annotated

import typer


def status_lines() -> list[str]:
    """The version line, then one line per compiled module of `engine.native`."""
    from engine import native
    from modelspec import __version__

    lines = [f"modelspec {__version__}"]
    if native.switched_off():
        return [*lines, f"compiled kernels: switched off ({native.SWITCH}=0), NumPy runs"]
    lines.append("compiled kernels (engine.native):")
    for name, loaded in native.built().items():
        state = "built" if loaded else "not built: its NumPy composite runs"
        if name == "_split" and loaded and not native.split_gemm_available():
            state += "; NumPy's bundled OpenBLAS not found: Python threads split the products"
        lines.append(f"  {name:<14} {state}")
    return lines


def _show_version(value: bool) -> None:
    if value:
        typer.echo("\n".join(status_lines()))
        raise typer.Exit()


def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Show the version and the compiled kernel modules in use, then exit.",
        ),
    ] = False,
) -> None:
    """Declare a Keras-style neural network in YAML: lint it, summarize it, train it."""


def register(app: typer.Typer) -> None:
    """Add `--version` to the modelspec app."""
    app.callback()(main_options)
