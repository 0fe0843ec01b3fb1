"""A model's planned training and inference steps: forward, losses, backward, one update.

A cross-entropy on a softmax or sigmoid output hands the producing layer the gradient with
respect to its logits directly, when that layer declares it can take it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from engine import device_checks
from engine.activations import Activation
from engine.backend import backend_of
from engine.tensor import Tensor
from engine.train.compile import resolve_compiled
from engine.train.executor import Executor
from engine.train.flat_params import FlatParams
from engine.train.tracker import Tracker, resolve_metrics

if TYPE_CHECKING:
    from engine.models import Model

Array = Any


class Trainer:
    """A model's planned training and inference steps (built once, reused by every fit)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.compiled = resolve_compiled(model)
        self.flat = FlatParams(model.trainable_weights)
        self.optimizer = self.compiled.optimizer
        if self.flat.size:
            self.optimizer.build([self.flat.flat], self.flat.segments)
        self.refresh()

    def refresh(self) -> None:
        """Re-plan the executors (after a layer adapted and may have new weight arrays)."""
        self.train_exec = Executor(self.model, self.flat, training=True)
        self.test_exec = Executor(self.model, None, training=False)
        self.side_exec = Executor(self.model, None, training=False)  # predict's second stream
        self.fused = _fuse_output_activations(self.train_exec, self.compiled.losses)

    def _losses(
        self,
        outs: list[Array],
        ys: list[Array],
        sw: Array | None,
        grads: bool,
        masks: Sequence[Any] = (),
    ) -> tuple[Any, list[Any], list[Array]]:
        c = self.compiled
        total = 0.0
        per_output: list[Any] = []
        gouts: list[Array] = []
        for i, (loss, w, y, out, fused) in enumerate(
            zip(c.losses, c.loss_weights, ys, outs, self.fused, strict=True)
        ):
            mask = masks[i] if masks else None
            weights = sw if mask is None else masked_weights(mask, sw, out.dtype)
            if grads and fused:
                value, g = loss.forward_logits_backward(y, out, weights)
            else:
                value, cache = loss.forward(y, out, weights)
                g = loss.backward(cache) if grads else None
            # Keras 3 logs each output's loss unweighted; only the total is weighted.
            per_output.append(_loss_value(value))
            total += w * per_output[-1]
            if g is not None:
                gouts.append(g if w == 1.0 else g * w)
        return total, per_output, gouts

    def gradients(
        self, xs: list[Array], ys: list[Array], sw: Array | None
    ) -> tuple[Any, list[Any], list[Array]]:
        """The batch's total loss (regularization included) with its gradient in `flat.grad`."""
        ex = self.train_exec
        outs, extra = ex.forward(xs)
        total, per_output, gouts = self._losses(outs, ys, sw, grads=True, masks=ex.output_masks)
        ex.backward(gouts)
        total += extra + self.flat.add_regularization()
        return total, per_output, outs

    def train_step(
        self,
        xs: list[Array],
        ys: list[Array],
        sw: Array | None,
        tracker: Tracker,
        reduce: Callable[[FlatParams], None] | None = None,
    ) -> Any:
        """One forward, backward and update; returns the batch's total loss (a float on the
        CPU, a 0-d array on a device). `reduce` turns
        this process's gradient into the whole batch's (data-parallel training)."""
        total, per_output, outs = self.gradients(xs, ys, sw)
        if self.compiled.metrics is None:
            resolve_metrics(self.compiled, ys, outs)
            tracker.reset()
        if reduce is not None:
            reduce(self.flat)
        self.apply_update()
        tracker.add(total, per_output, len(xs[0]))
        tracker.update_metrics(ys, outs, sw)
        return total

    def apply_update(self) -> None:
        """The optimizer's step from the gradient buffer, then the weights' constraints."""
        if self.flat.size:
            self.optimizer.apply([self.flat.flat], [self.flat.grad])
            self.flat.apply_constraints()

    def test_step(
        self, xs: list[Array], ys: list[Array], sw: Array | None, tracker: Tracker
    ) -> None:
        outs, extra = self.test_exec.forward(xs)
        if self.compiled.metrics is None:
            resolve_metrics(self.compiled, ys, outs)
            tracker.reset()
        total, per_output, _ = self._losses(
            outs, ys, sw, grads=False, masks=self.test_exec.output_masks
        )
        tracker.add(total + extra + self.flat.penalty(), per_output, len(xs[0]))
        tracker.update_metrics(ys, outs, sw)


def _loss_value(value: Array) -> Any:
    """A loss as a Python float on the CPU; on a device a float64 0-d array that stays there
    (reading it would sync every step), summed with the same float64 arithmetic."""
    if device_checks.on_host(value):
        return float(value)
    return value.astype("float64")


def masked_weights(mask: Any, sample_weight: Array | None, dtype: Any) -> Array:
    """Keras 3's `apply_mask` for a "sum_over_batch_size" loss: an output mask as weights.

    Masked entries weigh 0 and the others total / valid, so the mean over all entries equals
    the mean over the unmasked ones (0 when nothing is valid). A per-sample weight multiplies in.
    """
    m = mask.data if isinstance(mask, Tensor) else mask
    xp = backend_of(m).xp
    valid = int(m.sum())
    scale = m.size / valid if valid else 0.0
    weights = m.astype(dtype) * scale
    if sample_weight is not None:
        sw = xp.asarray(sample_weight, dtype=weights.dtype)
        weights = weights * sw.reshape(sw.shape + (1,) * (weights.ndim - sw.ndim))
    return weights


def _fuse_output_activations(ex: Executor, losses: list[Any]) -> list[bool]:
    """Per output: whether its loss takes the gradient straight to the pre-activation.

    A cross-entropy on softmax or sigmoid probabilities has a simple gradient with respect to
    the logits (`logits_backward`), cheaper and better conditioned than the loss's gradient
    times the activation's Jacobian. It applies when a layer that declares it takes that
    gradient (`takes_logits_gradient`) produces the output with exactly that activation, and
    nothing else (another layer, an activity regularizer) needs the gradient with respect to
    the probabilities.
    """
    producers = {c.output: c for c in ex.calls}
    consumed = {s for c in ex.calls for s in c.inputs}
    fused: list[bool] = []
    for slot, loss in zip(ex.output_slots, losses, strict=True):
        c = producers.get(slot)
        act = getattr(c.layer, "activation", None) if c is not None else None
        ok = (
            c is not None
            and isinstance(act, Activation)
            and loss.fusable_activation is not None
            and act.name == loss.fusable_activation
            and not act.args
            and c.layer.takes_logits_gradient
            and c.activity is None
            and slot not in consumed
            and ex.output_slots.count(slot) == 1
        )
        if ok:
            assert c is not None
            c.ctx.preactivation_grad = True
        fused.append(ok)
    return fused


def get_trainer(model: Model) -> Trainer:
    state = model._state
    trainer = state.trainer
    if trainer is None or trainer.flat.key != tuple(id(v) for v in model.trainable_weights):
        trainer = state.trainer = Trainer(model)
    return trainer
