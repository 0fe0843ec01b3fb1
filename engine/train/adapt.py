"""Adapting preprocessing layers (Normalization, ...) on the data as earlier layers shape it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backend import backend_of
from engine.train.executor import Executor
from engine.train.prepare import Data

if TYPE_CHECKING:
    from engine.models import Model
    from engine.train.stream_data import StreamData


def adapt_layers(model: Model, data: Data | StreamData) -> None:
    """Adapt layers that ask for it (`is_adapted` False) on the data as earlier layers shape it:
    arrays in one piece, a stream batch by batch over all its rows."""
    graph = model.graph
    pending = [c for c in graph.calls if getattr(c.layer, "is_adapted", True) is False]
    if not pending:
        return
    for call in pending:
        runner = Executor(model, None, training=False)
        adapt: Callable[[Any], None] = getattr(call.layer, "adapt")  # noqa: B009

        def seen(xs: list[Any], runner: Executor = runner, call: Any = call) -> np.ndarray:
            runner.forward(xs, stop_at=call.output)
            value = runner.values[call.inputs[0]]
            return np.asarray(backend_of(value).to_host(value))

        if isinstance(data, Data):
            adapt(seen(data.xs))
        else:
            adapt(seen(xs) for xs in data.adapt_inputs())
    if model._state.trainer is not None:
        model._state.trainer.refresh()
