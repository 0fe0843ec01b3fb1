"""What the MPI tests run on each rank: `python worker.py MODE ...` under mpirun.

- `cli FAULT -- ARGS`: `modelspec ARGS`, with FAULT (none, raise, kill, diverge) injected on
  rank 1 at the start of the second epoch, so the tests see what the real command does;
  `kill-mid` and the Ctrl-C placements `signal-before-agree`, `-in-agree`, `-after-agree` land
  on rank 1 at step MID_STEP of the second epoch (see `_inject` and `_late_signal`);
  `signal-when-idle` at rank 1's first idle step, `signal-at-epoch-end` at the first epoch's
  last step, `signal-after-last-agree` at the end of the last epoch, after the ranks agreed
  on the run's last step.
  With that fault each rank writes its exit code to `exit<rank>.txt` in the working folder.
- `batchnorm`: one data-parallel step of a BatchNormalization model; rank 0 prints its moving
  statistics as JSON for the test's hand-derived oracle.
- `stream-rows SOURCE_JSON DIR`: each rank reads two epochs of its shard of a stream and writes
  DIR/rank<r>.json: the units it read and the row ids (feature 0) it saw.
- `stream-adapt SOURCE_JSON DIR`: a Normalization adapts on the stream data-parallel; each rank
  writes the units it read and the statistics it got.
- `stream-fit SOURCE_JSON RUN_DIR`: a data-parallel fit on a stream; each rank writes its
  weights' digest and History to RUN_DIR/rank<r>.json. RUN_DIR gets step checkpoints;
  `--resume` continues from the last one.

(Reports go to files: MPI's launcher may interleave long lines the ranks print at once.)
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

FAULT_EPOCH = 2


# `kill-mid`: rank 1 is killed after this step of the second epoch (0-based 1); the Ctrl-C
# placements `signal-*-agree` land on rank 1 in it
MID_STEP = 60

# the running fit's epoch (0-based) and the step (1-based) it is in, for the faults to aim at
_AT = {"epoch": -1, "step": 0}


def _on_rank_1_mid_epoch() -> bool:
    from engine import distributed

    dp = distributed.active()
    return dp is not None and dp.rank == 1 and (_AT["epoch"], _AT["step"]) == (1, MID_STEP)


def _inject(fault: str) -> None:
    """Make rank 1 fail in the chosen way when the second epoch begins (`kill-mid`: in the
    middle of the second epoch, after step MID_STEP; `signal-before-agree`: Ctrl-C there,
    before the step's agreement reads the flag, so the ranks stop at this step)."""
    from engine import distributed
    from engine.callbacks import CallbackList

    original = CallbackList.on_epoch_begin
    original_batch_end = CallbackList.on_train_batch_end

    def on_train_batch_end(self: Any, batch: int, logs: Any) -> None:
        original_batch_end(self, batch, logs)
        _AT["step"] = batch + 1
        if fault == "kill-mid" and _on_rank_1_mid_epoch():
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "signal-before-agree" and _on_rank_1_mid_epoch():
            signal.raise_signal(signal.SIGINT)
        dp = distributed.active()
        last = (_AT["epoch"], batch + 1) == (0, self.callbacks[0].params["steps"])
        if fault == "signal-at-epoch-end" and dp is not None and dp.rank == 1 and last:
            signal.raise_signal(signal.SIGINT)

    CallbackList.on_train_batch_end = on_train_batch_end  # type: ignore[method-assign]

    def on_epoch_begin(self: Any, epoch: int) -> None:
        _AT["epoch"] = epoch
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
    original_epoch_end = CallbackList.on_epoch_end

    def on_epoch_end(self: Any, epoch: int, logs: Any = None) -> None:
        original_epoch_end(self, epoch, logs)
        dp = distributed.active()
        last = epoch == self.callbacks[0].params["epochs"] - 1
        if fault == "signal-after-last-agree" and dp is not None and dp.rank == 1 and last:
            signal.raise_signal(signal.SIGINT)

    CallbackList.on_epoch_end = on_epoch_end  # type: ignore[method-assign]


def _late_signal(fault: str) -> None:
    """Ctrl-C on rank 1 alone in step MID_STEP of the second epoch, where a real one can land
    once the step's agreement has read the flag: inside it, after the ranks exchanged their
    flags (`signal-in-agree`), or after it returned, before fit acts on it
    (`signal-after-agree`). The handler runs at once (`signal.raise_signal`), as it would if
    the signal came there."""
    from engine.distributed.replica import DataParallel
    from engine.train import loops

    agree, loss_failure = DataParallel.agree, loops.loss_failure

    def agree_then_signal(self: Any, *args: Any) -> Any:
        agreed = agree(self, *args)
        if fault == "signal-in-agree" and _on_rank_1_mid_epoch():
            signal.raise_signal(signal.SIGINT)
        return agreed

    def signal_then_check(*args: Any) -> Any:
        if fault == "signal-after-agree" and _on_rank_1_mid_epoch():
            signal.raise_signal(signal.SIGINT)
        return loss_failure(*args)

    idle_step, idled = DataParallel.idle_step, []

    def idle_then_signal(self: Any, trainer: Any) -> None:
        idle_step(self, trainer)
        if fault == "signal-when-idle" and self.rank == 1 and not idled:
            idled.append(True)
            signal.raise_signal(signal.SIGINT)

    DataParallel.agree = agree_then_signal  # type: ignore[method-assign]
    DataParallel.idle_step = idle_then_signal  # type: ignore[method-assign]
    loops.loss_failure = signal_then_check


def cli(fault: str, args: list[str]) -> None:
    from engine.distributed.launch import world_rank
    from modelspec.cli import app

    _inject(fault)
    _late_signal(fault)
    try:
        app(args, prog_name="modelspec")
    except SystemExit as exc:
        if fault == "signal-after-last-agree":
            code = exc.code if isinstance(exc.code, int) else 1
            Path(f"exit{world_rank()}.txt").write_text(str(code))
        raise


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


def stream_spec() -> dict[str, Any]:
    """The streaming tests' model (tests/streaming/test_fit_stream.py), with accuracy."""
    from tests.streaming.test_fit_stream import SPEC

    spec = copy.deepcopy(SPEC)
    spec["compile"]["metrics"] = ["accuracy"]
    return spec


def _stream(source_json: str) -> Any:
    from engine.config.data import DataSource
    from engine.data import InputSpec, ModelSignature, OutputSpec
    from engine.streaming import arrays, open_stream

    arrays.UNIT_BYTES = 1024  # NPY units of 32 rows, as many as the Parquet files' row groups
    signature = ModelSignature(
        (InputSpec("features", (6,)),),
        (OutputSpec("label", (3,), "sparse_categorical_crossentropy"),),
    )
    source = DataSource(**json.loads(source_json))
    return open_stream(source, Path.cwd(), signature)


def _report(folder: str, rank: int, report: dict[str, Any]) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    Path(folder, f"rank{rank}.json").write_text(json.dumps(report))


def stream_rows(source_json: str, folder: str) -> None:
    from engine.distributed.comm import Communicator

    comm = Communicator()
    stream = _stream(source_json)
    read = _counted(stream)
    mine = stream.shard(comm.rank, comm.size)
    epochs = []
    for epoch in range(2):
        read.clear()
        ids = [
            int(v)
            for x, _ in mine.batches(8, seed=3, epoch=epoch)
            for v in np.rint(x["features"][:, 0])
        ]
        epochs.append({"read": list(read), "ids": ids})
    _report(folder, comm.rank, {"rank": comm.rank, "epochs": epochs})


def _counted(stream: Any) -> list[str]:
    """The labels of the units `stream` reads from now on, in order."""
    read: list[str] = []
    original = stream.source.read

    def counting(unit: Any, columns: Any = None) -> Any:
        read.append(unit.label)
        return original(unit, columns)

    stream.source.read = counting
    return read


def stream_adapt(source_json: str, folder: str) -> None:
    from engine.build import from_spec
    from engine.distributed import data_parallel
    from engine.train.adapt import adapt_layers
    from engine.train.stream_data import StreamData

    spec = stream_spec()
    layers = spec["model"]["layers"]
    layers.insert(1, {"type": "Normalization", "name": "norm"})
    with data_parallel() as dp:
        model = from_spec(spec)
        stream = _stream(source_json)
        read = _counted(stream)
        adapt_layers(model, StreamData(model, stream), dp)
        stats = {
            w.name.rsplit("/", 1)[-1]: w.numpy().tolist() for w in model.get_layer("norm").weights
        }
        _report(folder, dp.rank, {"rank": dp.rank, "read": read, "stats": stats})


def stream_fit(source_json: str, run_dir: str, args: list[str]) -> None:
    """Three epochs on 2 ranks with step checkpoints every 3 steps; `--kill E,S`: rank 1 dies
    (SIGKILL) after step S of epoch E; `--resume`: continue from the run's last checkpoint."""
    import hashlib

    from engine.build import from_spec
    from engine.callbacks import StepCheckpointCallback
    from engine.distributed import data_parallel
    from engine.loading import resume
    from tests.streaming.test_resume import KillAt

    with data_parallel() as dp:
        model = from_spec(stream_spec())
        initial = resume(model, run_dir) if "--resume" in args else 0
        callbacks: list[Any] = [StepCheckpointCallback(run_dir, save_freq=3, writes=dp.rank == 0)]
        if "--kill" in args and dp.rank == 1:
            epoch, step = map(int, args[args.index("--kill") + 1].split(","))
            callbacks.append(KillAt(epoch, step, lambda: os.kill(os.getpid(), signal.SIGKILL)))
        history = model.fit(
            _stream(source_json),
            epochs=3,
            batch_size=16,
            verbose=0,
            callbacks=callbacks,
            initial_epoch=initial,
        )
        digest = hashlib.sha256()
        for w in model.get_weights():
            digest.update(w.tobytes())
        report = {"rank": dp.rank, "weights": digest.hexdigest(), "history": history.history}
        _report(run_dir, dp.rank, report)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "cli":
        cli(sys.argv[2], sys.argv[sys.argv.index("--") + 1 :])
    elif mode == "batchnorm":
        batchnorm()
    elif mode == "stream-rows":
        stream_rows(sys.argv[2], sys.argv[3])
    elif mode == "stream-adapt":
        stream_adapt(sys.argv[2], sys.argv[3])
    elif mode == "stream-fit":
        stream_fit(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
