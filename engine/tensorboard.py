"""Keras's TensorBoard callback: event files that `tensorboard --logdir` reads, via tensorboardX.

Like Keras, training scalars go to `<log_dir>/train` and validation scalars (the `val_` prefix
dropped) to `<log_dir>/validation`, as `epoch_<name>` per epoch and `batch_<name>` every
`update_freq` batches. Weight histograms every `histogram_freq` epochs, the layer graph (one
node per layer call) and the model's spec as text go to the train writer. tensorboardX is an
optional extra, imported when training starts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.callbacks import Callback, Logs, ReadLogs

UpdateFreq = Literal["epoch", "batch"] | int


class WriterUnavailableError(ImportError):
    """tensorboardX is not installed; the message names the extra that brings it."""


def _writer_class() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise WriterUnavailableError(
            "the TensorBoard callback needs tensorboardX, which is not installed: "
            "pip install 'modelspec[tensorboard]'"
        ) from None
    return SummaryWriter


class TensorBoard(Callback):
    """Log scalars, weight histograms, the graph and the spec for TensorBoard (Keras's arguments).

    `update_freq="batch"` logs every batch, an integer N every N batches, "epoch" only per epoch;
    `write_steps_per_second` adds the training speed. Weight images, the profiler and the
    embedding projector are not written: their arguments are refused unless left at defaults.
    Example: `model.fit(x, y, callbacks=[TensorBoard("logs", histogram_freq=1)])`.
    """

    def __init__(
        self,
        log_dir: str | Path = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: UpdateFreq = "epoch",
        profile_batch: int = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: Any = None,
    ) -> None:
        if histogram_freq < 0:
            raise ValueError(f"histogram_freq must be >= 0; got {histogram_freq}")
        if isinstance(update_freq, int) and update_freq < 1:
            raise ValueError(f"update_freq must be 'epoch', 'batch' or >= 1; got {update_freq}")
        _refuse_unsupported(
            write_images=write_images,
            profile_batch=profile_batch,
            embeddings_freq=embeddings_freq,
            embeddings_metadata=embeddings_metadata,
        )
        _writer_class()  # fail before training, not after the first epoch
        self.log_dir = Path(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_steps_per_second = write_steps_per_second
        self.update_freq: UpdateFreq = 1 if update_freq == "batch" else update_freq
        self._writers: dict[str, Any] = {}
        self._step = 0
        self._clock = {"epoch": 0.0, "batch": 0.0, "steps": 0.0}

    def _writer(self, run: str) -> Any:
        if run not in self._writers:
            self._writers[run] = _writer_class()(logdir=str(self.log_dir / run))
        return self._writers[run]

    def on_train_begin(self, logs: Logs | None = None) -> None:
        writer = self._writer("train")
        self._step = 0
        writer.add_text("spec", _spec_markdown(self.model), 0)
        if self.write_graph:
            writer._get_file_writer().add_onnx_graph(_graph_def(self.model))

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._step = max(self._step, epoch * int(self.params.get("steps") or 0))
        self._clock = dict.fromkeys(("epoch", "batch"), time.perf_counter()) | {"steps": 0.0}

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.on_train_batch_end_lazy(batch, lambda: dict(logs or {}))

    def on_train_batch_end_lazy(self, batch: int, read_logs: ReadLogs) -> None:
        """Counts the step; reads the logs only on the steps that write them."""
        self._step += 1
        self._clock["steps"] += 1
        if isinstance(self.update_freq, int) and self._step % self.update_freq == 0:
            scalars = dict(read_logs())
            if self.write_steps_per_second:
                now = time.perf_counter()
                scalars["steps_per_second"] = self.update_freq / (now - self._clock["batch"])
                self._clock["batch"] = now
            writer = self._writer("train")
            for name, value in scalars.items():
                writer.add_scalar(f"batch_{name}", float(value), self._step)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        scalars = dict(logs or {})
        if self.write_steps_per_second and self._clock["steps"]:
            elapsed = time.perf_counter() - self._clock["epoch"]
            scalars["steps_per_second"] = self._clock["steps"] / elapsed
        for name, value in scalars.items():
            run, base = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._writer(run).add_scalar(f"epoch_{base}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            writer = self._writer("train")
            for weight in self.model.weights:
                values = np.asarray(weight.numpy(), dtype=np.float64)
                writer.add_histogram(weight.name, values, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


_UNSUPPORTED = {
    "write_images": "weight images",
    "profile_batch": "the profiler",
    "embeddings_freq": "the embedding projector",
    "embeddings_metadata": "the embedding projector",
}


def _refuse_unsupported(**given: Any) -> None:
    """Keras's arguments for what modelspec does not write: accepted only at their defaults."""
    for name, value in given.items():
        if value:
            raise ValueError(
                f"TensorBoard({name}={value!r}) is not supported: modelspec writes no data for "
                f"{_UNSUPPORTED[name]}; leave {name} at its default"
            )


def _spec_markdown(model: Any) -> str:
    """The model's spec mapping as a fenced JSON block (TensorBoard renders text as Markdown)."""
    return "```json\n" + json.dumps({"model": model.get_config()}, indent=2) + "\n```"


def _graph_def(model: Any) -> Any:
    """The layer graph as a GraphDef: a node per input and per layer call, named by layer."""
    from tensorboardX.proto.graph_pb2 import GraphDef
    from tensorboardX.proto.node_def_pb2 import NodeDef

    graph = model.graph
    producer = dict(zip(graph.input_slots, model.input_names, strict=True))
    nodes = [NodeDef(name=name, op="InputLayer") for name in model.input_names]
    calls_of: dict[str, int] = {}
    for call in graph.calls:
        name = call.layer.name
        calls_of[name] = calls_of.get(name, 0) + 1
        node_name = name if calls_of[name] == 1 else f"{name}_call{calls_of[name]}"
        inputs = [producer[slot] for slot in call.inputs]
        nodes.append(NodeDef(name=node_name, op=type(call.layer).__name__, input=inputs))
        producer[call.output] = node_name
    return GraphDef(node=nodes)
