"""What a saved run is, as rows of text: its model, epochs, parameters, seed, versions, data,
and its final metrics. The terminal report and the HTML page both show these.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from engine import saving


def summary_rows(source: str, artifact: saving.Artifact) -> list[tuple[str, str]]:
    """(label, value) rows; `source` says which file the run was read from."""
    meta = artifact.metadata
    model = artifact.spec.get("model", {})
    epochs = max((len(v) for v in artifact.history.values()), default=0)
    params = sum(int(np.prod(w.shape)) for w in artifact.weights.values())
    rows = [
        ("source", source),
        ("model", f"{artifact.spec.get('name') or model.get('name', '?')} ({model.get('type')})"),
        ("epochs", str(epochs)),
        ("parameters", f"{params:,}"),
        ("seed", str(meta.get("seed"))),
        ("versions", ", ".join(f"{k} {v}" for k, v in meta.get("package_versions", {}).items())),
    ]
    return rows + [(f"data {k}", v) for k, v in meta.get("data_fingerprints", {}).items()]


def final_metrics(artifact: saving.Artifact) -> Mapping[str, float]:
    """The metrics saved at the end of the run, or the History's last values."""
    saved: Mapping[str, float] | None = artifact.metadata.get("final_metrics")
    return saved or {k: v[-1] for k, v in artifact.history.items() if v}


def load_run(run_dir: Path) -> tuple[str, saving.Artifact]:
    """The run's final model, or its newest checkpoint when training never finished."""
    if (run_dir / saving.MODEL_FILE).is_file() or run_dir.is_file():
        return "final model", saving.read_artifact(run_dir)
    if not run_dir.exists():
        raise saving.ArtifactNotFoundError(run_dir, "no such run folder or model file")
    path, artifact = saving.latest_checkpoint(run_dir)
    return f"checkpoint {path.name} (training did not finish)", artifact
