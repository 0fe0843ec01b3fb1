"""A trained model loaded once for prediction: the one path `modelspec predict` and `serve` share.

The samples are read with the data schema stored in the artifact (the training columns, the
class labels) by `engine.data.prediction_inputs`, whether they come from a file or a request
body, so the command line and the server give the same bits for the same samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import saving
from engine.data import (
    DataSchema,
    ModelSignature,
    prediction_columns,
    prediction_inputs,
    read_prediction_inputs,
)
from modelspec import runs


@dataclass
class Predictor:
    """A trained model with what it takes and gives, and the schema its data was read with."""

    path: Path
    model: Any
    signature: ModelSignature
    schema: DataSchema | None
    spec: dict[str, Any]
    metadata: dict[str, Any]
    checksum: str
    files: list[Path] | None = None

    @classmethod
    def load(cls, path: Path) -> Predictor:
        """Read, verify and build the model of a run folder or model file (once).

        Raises `runs.RunError` for a missing path and an `engine.saving.ArtifactError` naming
        the file and the damage, as `modelspec predict` reports them.
        """
        artifact, data = runs.read_stored(path)
        report = runs.stored_report(path, artifact)
        signature = runs.signature_of(report)
        model, schema = runs.load_trained(path, artifact)
        metadata = dict(getattr(model, "artifact_metadata", None) or {})
        checksum = saving.fingerprint_bytes(data)
        return cls(path, model, signature, schema, dict(report.data or {}), metadata, checksum)

    def inputs_from_file(self, path: Path) -> dict[str, np.ndarray]:
        """The model's inputs from a CSV, NPZ or NPY file of new samples, a Parquet or Arrow
        file (or folder) read whole, as the data section reads it; or, for a model trained on
        an image folder, an image or a folder of them decoded with the training's options
        (`files` then names each sample's file, in order)."""
        if path.suffix.lower() in (".csv", ".npz", ".npy"):
            return read_prediction_inputs(path, self.signature, self.schema)
        if self.schema is not None and self.schema.images is not None:
            from engine.streaming.folders import read_images

            table, self.files = read_images(path, self.schema.images)
            return prediction_inputs(table, self.signature, self.schema)
        from engine.config.data import DataSource
        from engine.streaming import read_whole

        source = DataSource(path=str(path))
        data, _ = read_whole(source, Path.cwd(), self.signature, self.schema, need_targets=False)
        return data.x

    def predict(self, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs keyed by output name (`model.predict`, default batch size)."""
        names = [spec.name for spec in self.signature.inputs]
        arrays = x[names[0]] if len(names) == 1 else {name: x[name] for name in names}
        return runs.as_outputs(self.model.predict(arrays), self.signature)

    def columns(
        self, outputs: Mapping[str, np.ndarray], *, probabilities: bool = False
    ) -> dict[str, list[Any]]:
        """Named columns: the original class labels, or class probabilities when asked; after
        images, first the file each row is."""
        return prediction_columns(
            outputs, self.signature, self.schema, probabilities=probabilities, files=self.files
        )
