"""A tiny training run for the resume tests: `... train_script DIR fresh|resume SLEEP`.

It trains a small MLP with a checkpoint each epoch (sleeping a little per step so a test can
kill it mid-run), then saves the final model into RUN_DIR.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from engine import loading, saving
from engine.build import from_spec
from engine.callbacks import Callback, CheckpointCallback

EPOCHS = 8
SPEC: dict[str, Any] = {
    "seed": 7,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [4]},
            {"type": "Dense", "units": 8, "activation": "relu"},
            {"type": "Dropout", "rate": 0.25},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
    },
    "compile": {
        "optimizer": "adam",
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
}


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)


class Sleep(Callback):
    """Slow every training step down so a kill lands in the middle of an epoch."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        time.sleep(self.seconds)


def train(run_dir: str, resume: bool, sleep: float) -> Any:
    model = from_spec(SPEC)
    initial_epoch = loading.resume(model, run_dir) if resume else 0
    x, y = data()
    model.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        initial_epoch=initial_epoch,
        callbacks=[CheckpointCallback(run_dir), Sleep(sleep)],
    )
    saving.save_model(model, run_dir)
    return model


if __name__ == "__main__":
    run_dir, mode, seconds = sys.argv[1:4]
    train(run_dir, resume=mode == "resume", sleep=float(seconds))
