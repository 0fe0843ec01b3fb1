"""What the MPI tests run on each rank: `python worker.py MODE ...` under mpirun.

- `cli FAULT -- ARGS`: `modelspec ARGS`, with FAULT (none, raise, kill, diverge) injected on
  rank 1 at the start of the second epoch, so the tests see what the real command does.
- `batchnorm`: one data-parallel step of a BatchNormalization model; rank 0 prints its moving
  statistics as JSON for the test's hand-derived oracle.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import numpy as np

FAULT_EPOCH = 2


def _inject(fault: str) -> None:
    """Make rank 1 fail in the chosen way when the second epoch begins."""
    from engine import distributed
    from engine.callbacks import CallbackList

    original = CallbackList.on_epoch_begin

    def on_epoch_begin(self: Any, epoch: int) -> None:
        dp = distributed.active()
        if dp is not None and dp.rank == 1 and epoch == FAULT_EPOCH:
            if fault == "raise":
                raise ValueError("injected failure")
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if fault == "diverge":
                w = self.callbacks[0].model.trainable_weights[0]
                w.data[...] = w.data + np.float32(1e-3)
        original(self, epoch)

    CallbackList.on_epoch_begin = on_epoch_begin  # type: ignore[method-assign]


def cli(fault: str, args: list[str]) -> None:
    from modelspec.cli import app

    _inject(fault)
    app(args, prog_name="modelspec")


def batchnorm() -> None:
    from engine.build import from_spec
    from engine.distributed import data_parallel

    spec = {
        "seed": 5,
        "model": {
            "type": "sequential",
            "layers": [
                {"type": "Input", "shape": [3]},
                {"type": "BatchNormalization"},
                {"type": "Dense", "units": 1},
            ],
        },
        "compile": {"optimizer": "sgd", "loss": "mse"},
    }
    x = np.random.default_rng(1).normal(2.0, 3.0, (8, 3)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    model = from_spec(spec)
    with data_parallel() as dp:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        if dp.rank == 0:
            stats = {w.name.rsplit("/", 1)[-1]: w.numpy().tolist() for w in model.weights}
            print(json.dumps({"x": x.tolist(), **stats}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "cli":
        cli(sys.argv[2], sys.argv[sys.argv.index("--") + 1 :])
    elif mode == "batchnorm":
        batchnorm()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
