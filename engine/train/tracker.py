"""Running means of the loss terms and the metrics over an epoch, and the logs they give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine import metrics
from engine.train.compile import Compiled

Array = Any


class Tracker:
    """Running means of the loss terms (weighted by batch size, as Keras does) and metrics."""

    def __init__(self, compiled: Compiled, names: list[str]) -> None:
        self.compiled = compiled
        self.multi = len(names) > 1
        self.names = names
        # sums saved mid-epoch (engine.train.position), put back once the metrics exist
        self.resumed: Callable[[Tracker], None] | None = None
        self.reads = 0  # how often the logs were read: on a device, each read is a sync
        self.reset()

    def all_metrics(self) -> list[Any]:
        """Every output's metrics in one list (none until they are resolved on the first step)."""
        return [m for group in self.compiled.metrics or [] for m in group]

    def reset(self) -> None:
        self.count = 0
        self.loss = 0.0
        self.per_output = [0.0] * len(self.names)
        for m in self.all_metrics():
            m.reset()
        if self.resumed is not None and self.compiled.metrics is not None:
            resumed, self.resumed = self.resumed, None
            resumed(self)

    def add(self, loss: Any, per_output: list[Any], n: int) -> None:
        """Add a batch's losses: floats, or on a device 0-d arrays summed there until read."""
        self.count += n
        self.loss += loss * n
        for k, v in enumerate(per_output):
            self.per_output[k] += v * n

    def update_metrics(self, ys: list[Array], outs: list[Array], sw: Array | None) -> None:
        for group, y, out in zip(self.compiled.metrics or [], ys, outs, strict=True):
            for m in group:
                m.update(y, out, sw)

    def logs(self) -> dict[str, float]:
        self.reads += 1
        n = max(self.count, 1)
        logs = {"loss": float(self.loss) / n}
        if self.multi:
            for name, v in zip(self.names, self.per_output, strict=True):
                logs[f"{name}_loss"] = float(v) / n
        for name, group in zip(self.names, self.compiled.metrics or [], strict=True):
            for m in group:
                key = f"{name}_{m.name}" if self.multi else m.name
                logs.update(_entries(key, m))
        return logs


def _entries(key: str, metric: Any) -> dict[str, float]:
    """A metric's log entries: its value, or for a value per threshold (Precision and Recall
    with a list of `thresholds`, where Keras logs one array) one float each, `key_at_<t>`, so
    every reader of the logs (progress, history, checkpoints' monitors) keeps taking floats."""
    value = metric.result()
    if not isinstance(value, list):
        return {key: float(value)}
    return {f"{key}_at_{t:g}": v for t, v in zip(metric.thresholds, value, strict=True)}


def _loss_name(loss: Any) -> str | None:
    name = getattr(loss, "name", None)
    return str(name) if name is not None else None


def resolve_metrics(compiled: Compiled, ys: list[Array], outs: list[Array]) -> None:
    compiled.metrics = [
        [
            m
            if not isinstance(m, (str, dict))
            else metrics.resolve(m, tuple(y.shape), tuple(out.shape), _loss_name(loss))
            for m in specs
        ]
        for specs, y, out, loss in zip(
            compiled.metric_specs, ys, outs, compiled.losses, strict=True
        )
    ]
