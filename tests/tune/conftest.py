"""A small iris spec with a `tune` section, copied with its data into a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[2]

SPEC: dict[str, Any] = {
    "name": "iris_search",
    "seed": 3,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [4]},
            {"type": "Dense", "units": 8, "activation": "relu"},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
    },
    "compile": {
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
    "data": {"train": {"path": "iris_train.csv", "target": "species"}},
    "fit": {"epochs": 4, "batch_size": 16, "validation_split": 0.2},
    "tune": {
        "n_trials": 4,
        "space": {
            "compile.optimizer.learning_rate": {
                "type": "float",
                "low": 1e-4,
                "high": 1e-1,
                "log": True,
            },
            "model.layers[1].units": {"type": "int", "low": 2, "high": 16},
            "fit.batch_size": {"type": "categorical", "choices": [8, 16, 32]},
        },
    },
}


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    shutil.copy(ROOT / "specs" / "data" / "iris_train.csv", folder / "iris_train.csv")
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
