"""Adapting preprocessing layers (Normalization, ...) on the data as earlier layers shape it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backend import backend_of
from engine.train.executor import Executor
from engine.train.prepare import Data

if TYPE_CHECKING:
    from engine.distributed.replica import DataParallel
    from engine.models import Model
    from engine.train.stream_data import StreamData


def adapt_layers(model: Model, data: Data | StreamData, dp: DataParallel | None = None) -> None:
    """Adapt layers that ask for it (`is_adapted` False) on the data as earlier layers shape it:
    arrays in one piece, a stream batch by batch over all its rows. Data-parallel, each rank
    reads only its share of a stream and the ranks merge their moments."""
    graph = model.graph
    pending = [c for c in graph.calls if getattr(c.layer, "is_adapted", True) is False]
    if not pending:
        return
    for call in pending:
        runner = Executor(model, None, training=False)
        layer: Any = call.layer

        def seen(xs: list[Any], runner: Executor = runner, call: Any = call) -> np.ndarray:
            runner.forward(xs, stop_at=call.output)
            value = runner.values[call.inputs[0]]
            return np.asarray(backend_of(value).to_host(value))

        if isinstance(data, Data):
            layer.adapt(seen(data.xs))
        elif dp is None:
            layer.adapt(seen(xs) for xs in data.adapt_inputs())
        else:
            share = data.shard(dp.rank, dp.size).adapt_inputs()
            local = layer.moments_of(seen(xs) for xs in share)
            layer.set_moments(dp.merge_moments(local, layer.stat_shape))
    if model._state.trainer is not None:
        model._state.trainer.refresh()
