"""The planned training step and the compile/fit/evaluate/predict loops behind Model.

Speed is designed in: the first fit plans the model once. Every trainable weight is rebound to a
view of ONE flat parameter buffer and its gradient to a view of a second flat buffer of the same
layout, so each layer's `backward` writes its gradients in place and the optimizer updates all
weights in one call. The run order, the per-call `PlannedContext` (with the buffers a layer
reuses every step), which calls need input gradients and where a shared layer must add a
second gradient are fixed at planning time; a step is then only the layers' fused
`forward`/`backward`, the loss and one optimizer update. A cross-entropy on a Dense layer's
softmax or sigmoid hands that layer the gradient with respect to its logits directly. fit,
evaluate and predict run with one BLAS thread and split large products over both cores
themselves (see `engine.fused.gemm` for the measurements behind that); predict with several
batches instead runs two of them side by side, each on one core.

Determinism: epoch `e`'s shuffle order comes from `default_rng([seed, e])` and its dropout
randomness from `default_rng([seed, e, 1])`, so a run resumed at epoch k with the saved weights and
optimizer state continues bit-identically without any saved generator state.
"""

from __future__ import annotations

import functools
import math
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from engine import callbacks as cb
from engine import rng as _rng
from engine.activations import Activation
from engine.backend import backend_of
from engine.fused import parallel
from engine.fused.gemm import planned_blas, whole_products
from engine.fused.workspace import PlannedContext
from engine.layers.base import Layer
from engine.layers.dense import Dense
from engine.regularizers import Regularizer
from engine.regularizers import get as get_regularizer
from engine.tensor import Tensor, Variable

if TYPE_CHECKING:
    from engine.models import Model

Array = Any
DEFAULT_BATCH_SIZE = 32


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a model that is not compiled, data that does not fit)."""


class FitConfig(BaseModel):
    """The spec's `fit` section: Keras's fit arguments with Keras's defaults."""

    model_config = ConfigDict(extra="forbid")
    epochs: PositiveInt = 1
    batch_size: PositiveInt = DEFAULT_BATCH_SIZE
    # The range (0, 1) is checked by fit and by the linter (with its own code), not here.
    validation_split: float = 0.0
    shuffle: bool = True
    verbose: Literal[0, 1, 2, "auto"] = "auto"
    initial_epoch: NonNegativeInt = 0
    # String keys are class labels: the caller maps them to class ids before fit.
    class_weight: dict[int | str, float] | None = None
    callbacks: list[cb.CallbackConfig] = Field(default_factory=list)

    def fit_kwargs(self, run_dir: str | Path | None = None) -> dict[str, Any]:
        """Arguments for `model.fit`, callbacks built (their files inside `run_dir` if given)."""
        data = self.model_dump(exclude={"callbacks"})
        data["callbacks"] = [c.build(run_dir) for c in self.callbacks]
        return data


# ----- compile -------------------------------------------------------------------------------
def _losses_module() -> Any:
    from engine import losses

    return losses


def _metrics_module() -> Any:
    from engine import metrics

    return metrics


def _describe(value: Any) -> Any:
    """A compile argument in spec form: names and maps as given, objects by their config."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, dict):
        return {k: _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if hasattr(value, "get_config"):
        return value.get_config()
    return getattr(value, "name", type(value).__name__)


def _per_output(value: Any, names: list[str], what: str, default: Any) -> list[Any]:
    """One setting per output from a single value, a list in output order, or a map by name."""
    if isinstance(value, dict) and not ("type" in value and what != "metrics"):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(
                f"compile {what} names {', '.join(map(repr, unknown))}, which are not outputs; "
                f"the outputs are {', '.join(map(repr, names))}"
            )
        return [value.get(n, default) for n in names]
    if isinstance(value, (list, tuple)) and what != "metrics":
        if len(value) != len(names):
            raise ValueError(f"compile got {len(value)} {what} for {len(names)} outputs")
        return list(value)
    if what == "metrics" and isinstance(value, (list, tuple)):
        if len(names) > 1 and value and all(isinstance(v, (list, tuple)) for v in value):
            if len(value) != len(names):
                raise ValueError(f"compile got {len(value)} metric lists for {len(names)} outputs")
            return [list(v) for v in value]
        return [list(value) for _ in names]
    return [default if value is None else value for _ in names]


@dataclass
class Compiled:
    """What compile() chose, per output, with metrics resolved once the data's shapes are known."""

    optimizer: Any
    losses: list[Any]
    loss_weights: list[float]
    metric_specs: list[list[Any]]
    metrics: list[list[Any]] | None = None


def compile_model(model: Model, optimizer: Any, loss: Any, metrics: Any, loss_weights: Any) -> None:
    """Keras's compile: the optimizer now; losses per output once the model is built (now, if
    it is); metrics at the first batch, when the shapes of labels and outputs are known."""
    from engine import optimizers

    if loss is None:
        raise ValueError("compile needs a loss, e.g. loss='mse'")
    model.optimizer = optimizers.get(optimizer)
    model.compile_config = {
        "optimizer": _describe(optimizer),
        "loss": _describe(loss),
        **({"metrics": _describe(metrics)} if metrics is not None else {}),
        **({"loss_weights": _describe(loss_weights)} if loss_weights is not None else {}),
    }
    state = model._state
    state.compile_args = (loss, metrics, loss_weights)
    state.compiled = None
    state.trainer = None
    if model.built:
        _compiled(model)


def _compiled(model: Model) -> Compiled:
    """The compile choices resolved per output (the model must be built and compiled)."""
    state = model._state
    if state.compiled is not None:
        return state.compiled
    if state.compile_args is None:
        raise TrainingError(f"model {model.name!r} is not compiled: call compile() first")
    loss, metrics, loss_weights = state.compile_args
    names = model.output_names
    loss_specs = _per_output(loss, names, "losses", None)
    missing = [n for n, s in zip(names, loss_specs, strict=True) if s is None]
    if missing:
        raise ValueError(f"compile gives no loss for output(s) {', '.join(map(repr, missing))}")
    losses = _losses_module()
    state.compiled = Compiled(
        optimizer=model.optimizer,
        losses=[losses.get(s) for s in loss_specs],
        loss_weights=[float(w) for w in _per_output(loss_weights, names, "loss_weights", 1.0)],
        metric_specs=[
            list(m) if isinstance(m, (list, tuple)) else [m]
            for m in _per_output(metrics, names, "metrics", [])
        ],
    )
    return state.compiled


# ----- the flat parameter buffer -------------------------------------------------------------
class FlatParams:
    """Every trainable weight as a view of one flat buffer, and its gradient likewise."""

    def __init__(self, variables: list[Variable]) -> None:
        self.variables = variables
        self.key = tuple(id(v) for v in variables)
        dtypes = {v.data.dtype for v in variables}
        if len(dtypes) > 1:
            raise TrainingError(
                "trainable weights mix dtypes "
                f"({', '.join(sorted(str(d) for d in dtypes))}); give every layer one dtype"
            )
        first = variables[0].data if variables else np.zeros(0, np.float32)
        xp = backend_of(first).xp
        dtype = first.dtype
        sizes = [math.prod(v.shape) for v in variables]
        offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.segments = [slice(a, b) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        self.flat = xp.empty(int(offsets[-1]), dtype=dtype)
        self.grad = xp.zeros(int(offsets[-1]), dtype=dtype)
        self.grad_views: dict[int, Array] = {}
        for v, seg in zip(variables, self.segments, strict=True):
            self.flat[seg] = v.data.reshape(-1)
            v._data = self.flat[seg].reshape(v.shape)
            self.grad_views[id(v)] = self.grad[seg].reshape(v.shape)
        self.regularized = [
            (v, v.regularizer, self.grad_views[id(v)]) for v in variables if v.regularizer
        ]
        self.constrained = [(v, v.constraint) for v in variables if v.constraint is not None]

    @property
    def size(self) -> int:
        return int(self.flat.size)

    def add_regularization(self) -> float:
        """Penalties of the weights' regularizers; their gradients go into the gradient buffer."""
        total = 0.0
        for v, reg, g in self.regularized:
            total += reg.penalty(v.data)
            g += reg.grad(v.data)
        return total

    def penalty(self) -> float:
        return sum(reg.penalty(v.data) for v, reg, _ in self.regularized)

    def apply_constraints(self) -> None:
        for v, constraint in self.constrained:
            v.data[...] = constraint(v.data)


# ----- the executor --------------------------------------------------------------------------
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


def _overrides(layer: Layer, name: str) -> bool:
    return getattr(type(layer), name) is not getattr(Layer, name)


class Executor:
    """Runs a model's graph on raw arrays: forward, and backward into the flat gradient buffer."""

    def __init__(self, model: Model, flat: FlatParams | None, training: bool) -> None:
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
            c.writes_mask = c.reads_mask or _overrides(c.layer, "output_mask")
            masked[c.output] = c.writes_mask
            c.ctx.need_input_grad = training and any(needs_grad[s] for s in c.inputs)
            has_grads = any(g is not None for g in c.grads)
            needs_grad[c.output] = c.ctx.need_input_grad or has_grads
            c.run_backward = needs_grad[c.output]
        self.calls = calls
        self.needs_grad = needs_grad
        self.any_mask = any(masked)
        self.output_masks: list[Any] = []
        self.caches: list[Any] = [None] * len(calls)
        self.values: list[Any] = [None] * graph.n_slots

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
        )

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
            x = [values[s] for s in c.inputs] if c.multi else values[c.inputs[0]]
            if c.reads_mask:
                c.ctx.mask = [masks[s] for s in c.inputs] if c.multi else masks[c.inputs[0]]
            out, caches[i] = c.layer.forward(c.params, x, c.ctx)
            values[c.output] = out
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
        values, caches, needs = self.values, self.caches, self.needs_grad
        for i in range(len(self.calls) - 1, -1, -1):
            c = self.calls[i]
            g = grads[c.output]
            if not c.run_backward or g is None:
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


# ----- metrics and logs ----------------------------------------------------------------------
class _Tracker:
    """Running means of the loss terms (weighted by batch size, as Keras does) and metrics."""

    def __init__(self, compiled: Compiled, names: list[str]) -> None:
        self.compiled = compiled
        self.multi = len(names) > 1
        self.names = names
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.loss = 0.0
        self.per_output = [0.0] * len(self.names)
        for group in self.compiled.metrics or []:
            for m in group:
                m.reset()

    def add(self, loss: float, per_output: list[float], n: int) -> None:
        self.count += n
        self.loss += loss * n
        for k, v in enumerate(per_output):
            self.per_output[k] += v * n

    def update_metrics(self, ys: list[Array], outs: list[Array], sw: Array | None) -> None:
        for group, y, out in zip(self.compiled.metrics or [], ys, outs, strict=True):
            for m in group:
                m.update(y, out, sw)

    def logs(self) -> dict[str, float]:
        n = max(self.count, 1)
        logs = {"loss": self.loss / n}
        if self.multi:
            for name, v in zip(self.names, self.per_output, strict=True):
                logs[f"{name}_loss"] = v / n
        for name, group in zip(self.names, self.compiled.metrics or [], strict=True):
            for m in group:
                key = f"{name}_{m.name}" if self.multi else m.name
                logs[key] = float(m.result())
        return logs


def _loss_name(loss: Any) -> str | None:
    name = getattr(loss, "name", None)
    return str(name) if name is not None else None


def _resolve_metrics(compiled: Compiled, ys: list[Array], outs: list[Array]) -> None:
    metrics = _metrics_module()
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


# ----- the trainer ---------------------------------------------------------------------------
class Trainer:
    """A model's planned training and inference steps (built once, reused by every fit)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.compiled = _compiled(model)
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
    ) -> tuple[float, list[float], list[Array]]:
        c = self.compiled
        total = 0.0
        per_output: list[float] = []
        gouts: list[Array] = []
        for i, (loss, w, y, out, fused) in enumerate(
            zip(c.losses, c.loss_weights, ys, outs, self.fused, strict=True)
        ):
            mask = masks[i] if masks else None
            value, cache = loss.forward(
                y, out, sw if mask is None else masked_weights(mask, sw, out.dtype)
            )
            v = w * float(value)
            total += v
            per_output.append(v)
            if grads:
                g = loss.logits_backward(cache) if fused else loss.backward(cache)
                gouts.append(g if w == 1.0 else g * w)
        return total, per_output, gouts

    def gradients(
        self, xs: list[Array], ys: list[Array], sw: Array | None
    ) -> tuple[float, list[float], list[Array]]:
        """The batch's total loss (regularization included) with its gradient in `flat.grad`."""
        ex = self.train_exec
        outs, extra = ex.forward(xs)
        total, per_output, gouts = self._losses(outs, ys, sw, grads=True, masks=ex.output_masks)
        ex.backward(gouts)
        total += extra + self.flat.add_regularization()
        return total, per_output, outs

    def train_step(
        self, xs: list[Array], ys: list[Array], sw: Array | None, tracker: _Tracker
    ) -> float:
        """One forward, backward and update; returns the batch's total loss."""
        total, per_output, outs = self.gradients(xs, ys, sw)
        if self.compiled.metrics is None:
            _resolve_metrics(self.compiled, ys, outs)
            tracker.reset()
        if self.flat.size:
            self.optimizer.apply([self.flat.flat], [self.flat.grad])
            self.flat.apply_constraints()
        tracker.add(total, per_output, len(xs[0]))
        tracker.update_metrics(ys, outs, sw)
        return total

    def test_step(
        self, xs: list[Array], ys: list[Array], sw: Array | None, tracker: _Tracker
    ) -> None:
        outs, extra = self.test_exec.forward(xs)
        if self.compiled.metrics is None:
            _resolve_metrics(self.compiled, ys, outs)
            tracker.reset()
        total, per_output, _ = self._losses(
            outs, ys, sw, grads=False, masks=self.test_exec.output_masks
        )
        tracker.add(total + extra + self.flat.penalty(), per_output, len(xs[0]))
        tracker.update_metrics(ys, outs, sw)


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
    times the activation's Jacobian. It applies when a plain Dense layer with exactly that
    activation produces the output, and nothing else (another layer, an activity
    regularizer) needs the gradient with respect to the probabilities.
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
            and type(c.layer).backward is Dense.backward
            and c.activity is None
            and slot not in consumed
            and ex.output_slots.count(slot) == 1
        )
        if ok:
            assert c is not None
            c.ctx.preactivation_grad = True
        fused.append(ok)
    return fused


@dataclass
class ModelState:
    """Per-model training state that is not weights: compile choices, the plan, the epoch."""

    compile_args: tuple[Any, Any, Any] | None = None
    compiled: Compiled | None = None
    trainer: Trainer | None = None
    epoch: int = 0
    callback_state: dict[str, Any] = field(default_factory=dict)
    live_callbacks: cb.CallbackList | None = None
    # predict's executors for a model without a trainer, keyed by the ids of its weight arrays
    inference: tuple[tuple[int, ...], list[Executor]] | None = None

    def invalidate(self) -> None:
        """Forget the plan and per-output choices after the graph changed (compile args stay)."""
        self.compiled = None
        self.trainer = None
        self.inference = None


def _trainer(model: Model) -> Trainer:
    state = model._state
    trainer = state.trainer
    if trainer is None or trainer.flat.key != tuple(id(v) for v in model.trainable_weights):
        trainer = state.trainer = Trainer(model)
    return trainer


# ----- data ----------------------------------------------------------------------------------
def _arrays(value: Any, names: list[str], what: str) -> list[np.ndarray]:
    """Arrays in the model's input (or output) order from an array, a list or a map by name."""
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise ValueError(
                f"{what} has no entry for {', '.join(map(repr, missing))}; "
                f"expected keys {', '.join(map(repr, names))}"
            )
        return [np.asarray(value[n]) for n in names]
    if isinstance(value, (list, tuple)) and len(names) > 1:
        if len(value) != len(names):
            raise ValueError(f"{what} has {len(value)} arrays; the model has {len(names)}")
        return [np.asarray(v) for v in value]
    return [np.asarray(value)]


def _cast_inputs(model: Model, xs: list[np.ndarray]) -> list[Array]:
    """Inputs in the dtypes the model's Input layers declare, on the current device, once."""
    from engine import backend

    xp_backend = backend.current()
    out = []
    for t, x, name in zip(model.inputs, xs, model.input_names, strict=True):
        want = t.shape[1:]
        got = x.shape[1:]
        if len(want) != len(got) or any(
            w is not None and w != g for w, g in zip(want, got, strict=True)
        ):
            raise ValueError(
                f"input {name!r} expects samples of shape {tuple(want)}; got {tuple(got)}"
            )
        dtype = t.dtype if t.dtype != "string" else object
        out.append(xp_backend.asarray(x, dtype=dtype))
    return out


def _cast_targets(model: Model, ys: list[np.ndarray]) -> list[Array]:
    from engine import backend

    xp_backend = backend.current()
    return [xp_backend.asarray(y, dtype=model.dtype if y.dtype.kind == "f" else None) for y in ys]


def _class_weights(y: np.ndarray, class_weight: dict[Any, float]) -> np.ndarray:
    """Keras's per-sample weights from a class map (one-hot rows by argmax, else rounded)."""
    labels = y
    if labels.ndim > 1:
        labels = labels.argmax(axis=-1) if labels.shape[-1] > 1 else labels[..., 0]
    ids = np.round(labels).astype(np.int64).reshape(len(y), -1)[:, 0]
    try:
        weights = {int(k): float(w) for k, w in class_weight.items()}
    except ValueError:
        raise ValueError(
            f"class_weight keys must be class ids; got {sorted(map(str, class_weight))} "
            "(map string labels to their ids first)"
        ) from None
    table = np.ones(max(int(ids.max(initial=0)), *weights, 0) + 1, dtype=np.float64)
    for k, w in weights.items():
        table[k] = w
    return table[ids]


@dataclass
class _Data:
    xs: list[Array]
    ys: list[Array]
    sw: Array | None

    @property
    def size(self) -> int:
        return int(len(self.xs[0]))

    def take(self, index: Any) -> _Data:
        sw = self.sw[index] if self.sw is not None else None
        return _Data([a[index] for a in self.xs], [a[index] for a in self.ys], sw)

    def batches(self, batch_size: int, order: np.ndarray | None = None) -> Any:
        """Consecutive batches, or batches gathered in `order` (a permutation of the samples):
        gathering batch by batch never copies the whole data set."""
        n = self.size
        for start in range(0, n, batch_size):
            sl = slice(start, min(start + batch_size, n))
            index = sl if order is None else order[sl]
            sw = self.sw[index] if self.sw is not None else None
            yield [a[index] for a in self.xs], [a[index] for a in self.ys], sw


def _prepare(
    model: Model,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    class_weight: dict[Any, float] | None = None,
) -> _Data:
    if x is None or y is None:
        raise ValueError("training and evaluation need both x and y")
    xs = _cast_inputs(model, _arrays(x, model.input_names, "x"))
    raw_ys = _arrays(y, model.output_names, "y")
    n = len(xs[0])
    for name, a in [
        *zip(model.input_names, xs, strict=True),
        *zip(model.output_names, raw_ys, strict=True),
    ]:
        if len(a) != n:
            raise ValueError(f"{name!r} has {len(a)} samples; the first input has {n}")
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if class_weight:
        cw = _class_weights(raw_ys[0], class_weight)
        weights = cw if weights is None else weights * cw
    sw = None if weights is None else np.asarray(weights, dtype=model.dtype)
    return _Data(xs, _cast_targets(model, raw_ys), sw)


def _validation(value: Any, model: Model) -> _Data:
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)")
    return _prepare(model, value[0], value[1], value[2] if len(value) == 3 else None)


# ----- adapting preprocessing layers ---------------------------------------------------------
def _adapt(model: Model, data: _Data) -> None:
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


# ----- interruption --------------------------------------------------------------------------
class _StopOnInterrupt:
    """Turns Ctrl-C during fit into 'stop after the current step' (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> _StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# ----- fit / evaluate / predict --------------------------------------------------------------
def _batch_hooks(callbacks: cb.CallbackList) -> bool:
    return any(
        type(c).on_train_batch_end is not cb.Callback.on_train_batch_end
        or type(c).on_train_batch_begin is not cb.Callback.on_train_batch_begin
        for c in callbacks.callbacks
    )


def _model_seed(model: Model) -> int:
    if model.seed is None:
        model.seed = int(_rng.generator().integers(2**31 - 1))
    return model.seed


@planned_blas()
def fit(
    model: Model,
    x: Any = None,
    y: Any = None,
    batch_size: int | None = None,
    epochs: int = 1,
    verbose: int | str = "auto",
    callbacks: Sequence[cb.Callback] | None = None,
    validation_split: float = 0.0,
    validation_data: Any = None,
    shuffle: bool = True,
    class_weight: dict[Any, float] | None = None,
    sample_weight: Any = None,
    initial_epoch: int = 0,
) -> cb.History:
    """Keras's fit on arrays (or maps of arrays by input/output name); returns a History.

    Stops early when a callback sets `model.stop_training`, or after the current step on
    Ctrl-C (KeyboardInterrupt), keeping the History so far. A NaN or infinite loss raises
    TrainingError naming the epoch and step (1-based), unless TerminateOnNaN stopped the run.
    """
    _ensure_built(model, x)
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    data = _prepare(model, x, y, sample_weight, class_weight)
    val: _Data | None = None
    if validation_data is not None:
        val = _validation(validation_data, model)
    elif validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1); got {validation_split}")
        split_at = int(math.floor(data.size * (1.0 - validation_split)))
        if split_at in (0, data.size):
            raise ValueError(
                f"validation_split={validation_split} leaves no training or no validation "
                f"samples out of {data.size}"
            )
        val = data.take(slice(split_at, None))
        data = data.take(slice(None, split_at))
    _adapt(model, data)
    trainer = _trainer(model)
    seed = _model_seed(model)
    steps = math.ceil(data.size / batch_size)
    verbose_level = 1 if verbose == "auto" else int(verbose)
    history = cb.History()
    callback_list = cb.CallbackList(
        list(callbacks or []),
        model=model,
        history=history,
        verbose=verbose_level,
        params={"epochs": epochs, "steps": steps, "verbose": verbose_level},
    )
    callback_list.set_state(model._state.callback_state)
    model._state.live_callbacks = callback_list
    model.stop_training = False
    model.history = history
    tracker = _Tracker(trainer.compiled, model.output_names)
    val_tracker = _Tracker(trainer.compiled, model.output_names)
    batch_hooks = _batch_hooks(callback_list)
    callback_list.on_train_begin()
    with _StopOnInterrupt() as interrupt:
        try:
            for epoch in range(initial_epoch, epochs):
                callback_list.on_epoch_begin(epoch)
                order = (
                    np.random.default_rng([seed, epoch]).permutation(data.size) if shuffle else None
                )
                trainer.train_exec.set_rng(np.random.default_rng([seed, epoch, 1]))
                tracker.reset()
                for step, (bx, by, bsw) in enumerate(data.batches(batch_size, order)):
                    if batch_hooks:
                        callback_list.on_train_batch_begin(step)
                    loss = trainer.train_step(bx, by, bsw, tracker)
                    if batch_hooks:
                        callback_list.on_train_batch_end(step, tracker.logs())
                    if not math.isfinite(loss):
                        if model.stop_training:
                            break
                        kind = "NaN" if math.isnan(loss) else "infinite"
                        raise TrainingError(
                            f"loss became {kind} at epoch {epoch + 1}, step {step + 1}"
                        )
                    if interrupt.requested or model.stop_training:
                        break
                if interrupt.requested:
                    break
                logs = tracker.logs()
                if val is not None:
                    logs.update(
                        (f"val_{k}", v)
                        for k, v in _run_test(trainer, val, batch_size, val_tracker).items()
                    )
                model._state.epoch = epoch + 1
                callback_list.on_epoch_end(epoch, logs)
                if model.stop_training:
                    break
        except KeyboardInterrupt:
            history.interrupted = True
        history.interrupted = history.interrupted or interrupt.requested
    callback_list.on_train_end()
    model._state.callback_state = callback_list.get_state()
    model._state.live_callbacks = None
    return history


def _run_test(
    trainer: Trainer, data: _Data, batch_size: int, tracker: _Tracker
) -> dict[str, float]:
    tracker.reset()
    for bx, by, bsw in data.batches(batch_size):
        trainer.test_step(bx, by, bsw, tracker)
    return tracker.logs()


@planned_blas()
def evaluate(
    model: Model,
    x: Any = None,
    y: Any = None,
    batch_size: int | None = None,
    verbose: Any = 0,
    sample_weight: Any = None,
    return_dict: bool = False,
) -> Any:
    """Loss and metrics on data, in inference mode; Keras's return shapes."""
    _ensure_built(model, x)
    data = _prepare(model, x, y, sample_weight)
    trainer = _trainer(model)
    logs = _run_test(
        trainer,
        data,
        batch_size or DEFAULT_BATCH_SIZE,
        _Tracker(trainer.compiled, model.output_names),
    )
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


@planned_blas()
def predict(model: Model, x: Any, batch_size: int | None = None) -> Any:
    """The model's outputs for `x` in inference mode, as NumPy arrays.

    With several batches and layers that allow it, two executors run batches side by side,
    one per core, each product whole: no hand-off inside a batch, and the faster core takes
    more batches. Each batch is computed the same whichever thread runs it.
    """
    _ensure_built(model, x)
    xs = _cast_inputs(model, _arrays(x, model.input_names, "x"))
    size = batch_size or DEFAULT_BATCH_SIZE
    n = len(xs[0])
    if not n:
        empty = [np.empty((0, *_known(t.shape[1:])), dtype=t.dtype) for t in model.outputs]
        return empty[0] if model._single_output else empty
    count = math.ceil(n / size)
    executors = _predict_executors(model, side_by_side=count > 1)
    results: list[np.ndarray] = []
    allocating = threading.Lock()

    def run_batch(ex: Executor, index: int) -> None:
        start = index * size
        outs, _ = ex.forward([a[start : start + size] for a in xs])
        with allocating:
            if not results:
                results.extend(np.empty((n, *o.shape[1:]), dtype=o.dtype) for o in outs)
        for r, o in zip(results, outs, strict=True):
            r[start : start + len(o)] = backend_of(o).to_host(o)

    if len(executors) == 1:
        for index in range(count):
            run_batch(executors[0], index)
    else:
        parallel.share(count, [functools.partial(_whole_batch, run_batch, ex) for ex in executors])
    return results[0] if model._single_output else results


def _whole_batch(run_batch: Callable[[Executor, int], None], ex: Executor, index: int) -> None:
    with whole_products():
        run_batch(ex, index)


def _predict_executors(model: Model, side_by_side: bool) -> list[Executor]:
    """One inference executor, or two for batches side by side when every layer allows it.

    They are the trainer's once the model has been fit, else planned once and kept until a
    weight array is replaced or the graph changes.
    """
    state = model._state
    if state.trainer is not None:
        pair = [state.trainer.test_exec, state.trainer.side_exec]
    else:
        key = tuple(id(w.data) for call in model.graph.calls for w in call.layer.weights)
        if state.inference is None or state.inference[0] != key:
            state.inference = (key, [Executor(model, None, False) for _ in range(2)])
        pair = state.inference[1]
    side_by_side = side_by_side and all(
        c.layer.concurrent_inference and all(isinstance(p, np.ndarray) for p in c.params)
        for c in pair[0].calls
    )
    return pair if side_by_side else pair[:1]


def _known(shape: Sequence[int | None]) -> tuple[int, ...]:
    return tuple(d or 0 for d in shape)


def _ensure_built(model: Model, x: Any) -> None:
    """A Sequential model without an input shape is built from the first data it sees."""
    if model.built:
        return
    build: Callable[[Any], None] | None = getattr(model, "build", None)
    if build is None or x is None:
        model.graph  # noqa: B018  (raises the 'not built' error)
        return
    build(np.asarray(_arrays(x, ["input"], "x")[0]).shape)


# ----- resume --------------------------------------------------------------------------------
def get_training_state(model: Model) -> dict[str, Any]:
    """Epoch reached, seed, optimizer state, last history and callback state."""
    state = model._state
    return {
        "epoch": state.epoch,
        "seed": model.seed,
        "optimizer": model.optimizer.get_state() if model.optimizer is not None else None,
        "history": dict(model.history.history) if model.history is not None else {},
        "callbacks": (
            state.live_callbacks.get_state()
            if state.live_callbacks is not None
            else dict(state.callback_state)
        ),
    }


def set_training_state(model: Model, state: dict[str, Any]) -> None:
    """Restore `get_training_state()`; then `fit(initial_epoch=state['epoch'])` resumes exactly."""
    model._state.epoch = int(state.get("epoch", 0))
    if state.get("seed") is not None:
        model.seed = int(state["seed"])
    if state.get("optimizer") is not None:
        if model.optimizer is None:
            raise TrainingError("set_training_state needs a compiled model (it has no optimizer)")
        model.optimizer.set_state(state["optimizer"])
    history = cb.History()
    history.history = {k: list(v) for k, v in state.get("history", {}).items()}
    history.epoch = list(range(len(next(iter(history.history.values()), []))))
    model.history = history
    model._state.callback_state = dict(state.get("callbacks", {}))
