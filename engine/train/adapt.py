"""Adapting preprocessing layers (Normalization, ...) on the data as earlier layers shape it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from engine.backend import backend_of
from engine.train.executor import Executor
from engine.train.prepare import Data

if TYPE_CHECKING:
    from engine.train.stream_data import StreamData

if TYPE_CHECKING:
    from engine.models import Model


def adapt_layers(model: Model, data: Data | StreamData) -> None:
    """Adapt layers that ask for it (`is_adapted` False) on the data as earlier layers shape it."""
    graph = model.graph
    pending = [c for c in graph.calls if getattr(c.layer, "is_adapted", True) is False]
    if not pending:
        return
    for call in pending:
        runner = Executor(model, None, training=False)
        runner.forward(data.xs, stop_at=call.output)
        seen = runner.values[call.inputs[0]]
        adapt: Callable[[np.ndarray], None] = getattr(call.layer, "adapt")  # noqa: B009
        adapt(backend_of(seen).to_host(seen))
    if model._state.trainer is not None:
        model._state.trainer.refresh()
