"""`engine.load_model`: a saved model rebuilt from its stored spec, then given its weights.

It sits above both `engine.saving` (the archive) and `engine.build` (spec -> model), so that
neither imports the other: `Model.save` writes through `saving`, which knows no builder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from engine.build import from_spec
from engine.saving import Artifact, apply_artifact, latest_checkpoint, read_artifact


def load_model(
    path: str | os.PathLike[str],
    builder: Callable[[dict[str, Any]], Any] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
) -> Any:
    """`engine.load_model(path)`: rebuild the model from the stored spec, then its weights.

    `custom_objects` maps custom layer class names to the classes (Keras's argument): the
    archive names a class, the caller supplies its code. The model gets `label_maps` and
    `artifact_metadata` attributes from the artifact.
    """
    return model_from_artifact(read_artifact(path), str(path), builder, custom_objects)


def model_from_artifact(
    artifact: Artifact,
    where: str,
    builder: Callable[[dict[str, Any]], Any] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
) -> Any:
    """`load_model` of an artifact already read (`where` names it in errors)."""
    if builder is None:
        builder = functools.partial(from_spec, custom_objects=custom_objects)
    return apply_artifact(builder(artifact.spec), artifact, where)


def resume(model: Any, run_dir: str | os.PathLike[str]) -> int:
    """Restore the newest intact checkpoint of a run into `model`; returns fit's initial_epoch."""
    path, artifact = latest_checkpoint(run_dir)
    apply_artifact(model, artifact, str(path))
    return int((artifact.training_state or {}).get("epoch", 0))
