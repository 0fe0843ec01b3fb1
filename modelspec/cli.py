"""The `modelspec` command: typer commands only. Each command module adds its commands to `app`.

Command modules live in `modelspec/commands/`; every module there defines `register(app)`.
"""

from __future__ import annotations

import importlib
import os
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
    # Pydantic looks for plugins (observability hooks) in every installed package's metadata
    # when it builds its first validator: ~0.03 s of each `lint`, for hooks a spec check has
    # no use for. A user who sets the variable keeps their setting.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()


if __name__ == "__main__":
    main()
