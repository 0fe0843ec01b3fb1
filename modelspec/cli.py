"""The `modelspec` command: typer commands only. Each command module adds its commands to `app`.

Command modules live in `modelspec/commands/`; every module there defines `register(app)`.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from modelspec import commands

app = typer.Typer(
    name="modelspec",
    help="Declare a Keras-style neural network in YAML: lint it, summarize it, train it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    importlib.import_module(f"{commands.__name__}.{_module.name}").register(app)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
