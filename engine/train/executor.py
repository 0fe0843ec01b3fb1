"""Runs a model's graph on raw arrays, planned once: the run order, each call's context and
buffers, which calls need input gradients, where a shared layer adds a second gradient, and
which layer pairs run as one call (`engine/train/fusion.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import allocator
from engine.backend import backend_of
from engine.fused.workspace import PlannedContext
from engine.layers.base import Layer
from engine.regularizers import Regularizer
from engine.regularizers import get as get_regularizer
from engine.train import fusion
from engine.train.flat_params import FlatParams

if TYPE_CHECKING:
    from engine.models import Model

Array = Any


@dataclass
class _Call:
    """One planned layer call."""

    layer: Layer
    params: list[Array]
    grads: list[Array | None]
    accumulate: list[tuple[Array, Array]]
    ctx: PlannedContext
    inputs: tuple[int, ...]
    output: int
    multi: bool
    run_backward: bool
    activity: Regularizer | None
    reads_mask: bool
    writes_mask: bool
    # the layer's forward, or a fusion's that also runs the next call (whose output it writes)
    forward: Callable[[list[Array], Any, PlannedContext], tuple[Array, Any]]
    writes: int
    absorbed: bool = False  # run inside the call before it


def _makes_masks(layer: Layer) -> bool:
    """Whether a layer may give a mask when its inputs have none (Embedding, Masking): one
    that overrides `output_mask` and does not declare it only combines its inputs' masks."""
    overrides = type(layer).output_mask is not Layer.output_mask
    return overrides and not getattr(layer, "mask_from_inputs_only", False)


class Executor:
    """Runs a model's graph on raw arrays: forward, and backward into the flat gradient buffer."""

    def __init__(self, model: Model, flat: FlatParams | None, training: bool) -> None:
        # every step frees and allocates the same arrays: keep their pages (engine/allocator.py)
        allocator.keep_freed_blocks()
        graph = model.graph
        self.input_slots = graph.input_slots
        self.output_slots = graph.output_slots
        self.n_slots = graph.n_slots
        self.training = training
        masked = [False] * graph.n_slots
        needs_grad = [False] * graph.n_slots
        seen: set[int] = set()
        calls: list[_Call] = []
        for call in reversed(graph.calls):
            calls.append(self._plan(call.layer, call.inputs, call.output, flat, seen))
        calls.reverse()
        for c in calls:
            c.reads_mask = any(masked[s] for s in c.inputs)
            c.writes_mask = c.reads_mask or _makes_masks(c.layer)
            masked[c.output] = c.writes_mask
            c.ctx.need_input_grad = training and any(needs_grad[s] for s in c.inputs)
            has_grads = any(g is not None for g in c.grads)
            needs_grad[c.output] = c.ctx.need_input_grad or has_grads
            c.run_backward = needs_grad[c.output]
        self.calls = calls
        self._fuse(graph.input_slots, graph.output_slots)
        self.needs_grad = needs_grad
        self.any_mask = any(masked)
        self.output_masks: list[Any] = []
        self.caches: list[Any] = [None] * len(calls)
        self.values: list[Any] = [None] * graph.n_slots
        # Told during backward that calls from index k on are done (k = 0: the pass is over);
        # data-parallel training starts each gradient bucket's Allreduce from it.
        self.progress: Callable[[int], None] | None = None

    def _plan(
        self,
        layer: Layer,
        inputs: tuple[int, ...],
        output: int,
        flat: FlatParams | None,
        seen: set[int],
    ) -> _Call:
        weights = layer.weights
        params = [w.data for w in weights]
        grads: list[Array | None] = []
        accumulate: list[tuple[Array, Array]] = []
        first_use = id(layer) not in seen
        seen.add(id(layer))
        for w, p in zip(weights, params, strict=True):
            view = flat.grad_views.get(id(w)) if flat is not None and self.training else None
            if view is None or first_use:
                grads.append(view)
            else:
                temp = backend_of(p).xp.empty_like(p)
                grads.append(temp)
                accumulate.append((temp, view))
        spec = getattr(layer.config, "activity_regularizer", None)
        return _Call(
            layer=layer,
            params=params,
            grads=grads,
            accumulate=accumulate,
            ctx=PlannedContext(training=self.training),
            inputs=inputs,
            output=output,
            multi=layer.multi_input,
            run_backward=False,
            activity=get_regularizer(spec),
            reads_mask=False,
            writes_mask=False,
            forward=layer.forward,
            writes=output,
        )

    def _fuse(self, input_slots: Sequence[int], output_slots: Sequence[int]) -> None:
        """Let a producer run its one consumer too where a fusion pattern allows it and
        nothing else needs the value between them: no other reader, not a model input or
        output, no mask, no activity regularizer, and neither layer called twice."""
        readers: dict[int, list[_Call]] = {}
        uses: dict[int, int] = {}
        for c in self.calls:
            uses[id(c.layer)] = uses.get(id(c.layer), 0) + 1
            for s in c.inputs:
                readers.setdefault(s, []).append(c)
        kept = {*input_slots, *output_slots}
        for c in self.calls:
            found = readers.get(c.output, [])
            if len(found) != 1 or c.output in kept or c.absorbed:
                continue
            # calls run in graph order: nxt, after c, is not yet fused with a call of its own
            (nxt,) = found
            if any(
                uses[id(p.layer)] > 1 or p.writes_mask or p.activity is not None for p in (c, nxt)
            ):
                continue
            fused = fusion.match(c.layer, nxt.layer)
            if fused is None:
                continue
            c.forward = fused
            c.writes = nxt.output
            nxt.absorbed = True

    def set_rng(self, generator: np.random.Generator) -> None:
        for c in self.calls:
            c.ctx.rng = generator

    def forward(self, xs: Sequence[Array], stop_at: int | None = None) -> tuple[list[Array], float]:
        """Model outputs for a batch and the activity-regularization loss."""
        values = self.values
        for slot, x in zip(self.input_slots, xs, strict=True):
            values[slot] = x
        masks: list[Any] = [None] * self.n_slots if self.any_mask else []
        extra = 0.0
        caches = self.caches
        for i, c in enumerate(self.calls):
            if c.output == stop_at:
                break
            if c.absorbed:
                continue
            x = [values[s] for s in c.inputs] if c.multi else values[c.inputs[0]]
            if c.reads_mask:
                c.ctx.mask = [masks[s] for s in c.inputs] if c.multi else masks[c.inputs[0]]
            out, caches[i] = c.forward(c.params, x, c.ctx)
            values[c.writes] = out
            if c.writes_mask:
                masks[c.output] = c.layer.output_mask(x, c.ctx.mask)
            if c.activity is not None:
                extra += c.activity.penalty(out) / out.shape[0]
        self.output_masks = [masks[s] for s in self.output_slots] if masks else []
        return [values[s] for s in self.output_slots], extra

    def backward(self, grad_outputs: Sequence[Array]) -> None:
        """Gradients of every trainable weight into the flat buffer (shared layers summed)."""
        grads: list[Any] = [None] * self.n_slots
        for slot, g in zip(self.output_slots, grad_outputs, strict=True):
            grads[slot] = g if grads[slot] is None else grads[slot] + g
        values, caches, needs, progress = self.values, self.caches, self.needs_grad, self.progress
        for i in range(len(self.calls) - 1, -1, -1):
            if progress is not None:
                progress(i + 1)
            c = self.calls[i]
            g = grads[c.writes]
            if not c.run_backward or g is None or c.absorbed:
                continue
            if c.activity is not None:
                out = values[c.output]
                g = g + c.activity.grad(out) / out.shape[0]
            gin = c.layer.backward(c.params, caches[i], g, c.grads, c.ctx)
            for temp, view in c.accumulate:
                view += temp
            if not c.ctx.need_input_grad:
                continue
            pairs = zip(c.inputs, gin, strict=True) if c.multi else [(c.inputs[0], gin)]
            for slot, gs in pairs:
                if gs is not None and needs[slot]:
                    grads[slot] = gs if grads[slot] is None else grads[slot] + gs
        if progress is not None:
            progress(0)
