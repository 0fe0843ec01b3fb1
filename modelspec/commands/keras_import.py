"""The `import` command: a Keras model file -> a reviewable spec and a model archive.

A damaged file (or no h5py) is one line on stderr and exit 2; a model holding something modelspec
will not run (Python code in a Lambda, a custom class) is one line naming the layer and exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

SPEC_FILE = "spec.yaml"


def _spec_text(spec: dict[str, Any], source: Path, keras_version: str | None) -> str:
    made_by = f"Keras {keras_version}" if keras_version else "Keras"
    header = f"# Imported from {source.name} ({made_by}) by `modelspec import`.\n"
    return header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=100)


def import_model(
    model: Annotated[Path, typer.Argument(help="A Keras 3 .keras archive or a legacy .h5 model.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="The folder to write (default: runs/<name>/).")
    ] = None,
    spec_only: Annotated[
        bool, typer.Option("--spec-only", help="Write only spec.yaml, not the weights.")
    ] = False,
) -> None:
    """Import a Keras model: its spec and a model archive with its weights (`keras` extra)."""
    from engine import saving
    from engine.atomic import atomic_write_bytes
    from engine.keras_io.errors import KerasArchiveError, KerasUnsupportedError
    from engine.keras_io.importer import import_keras

    console, err = Console(), Console(stderr=True)
    try:
        imported = import_keras(model)
    except (KerasArchiveError, KerasUnsupportedError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2 if isinstance(exc, KerasArchiveError) else 1) from None
    folder = out if out is not None else Path("runs") / imported.spec["name"]
    text = _spec_text(imported.spec, model, imported.keras_version)
    atomic_write_bytes(folder / SPEC_FILE, text.encode("utf-8"))
    written = [folder / SPEC_FILE]
    if not spec_only:
        artifact = saving.model_artifact(imported.model, spec=imported.spec)
        artifact.metadata["imported_from"] = {
            "file": model.name,
            "keras_version": imported.keras_version,
        }
        written.append(saving.write_artifact(folder / saving.MODEL_FILE, artifact))
    for note in imported.notes:
        err.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    for path in written:
        console.print(f"Wrote {path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `import` to the modelspec app."""
    app.command("import")(import_model)
