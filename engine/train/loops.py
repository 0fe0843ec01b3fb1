"""Keras's fit, evaluate and predict over a model's planned steps.

fit, evaluate and predict run with one BLAS thread and split large products over both cores
themselves (see `engine.fused.gemm` for the measurements behind that); predict with several
batches instead runs two executors side by side, each on one core.

Determinism: epoch `e`'s shuffle order comes from `default_rng([seed, e])` and its dropout
randomness from `default_rng([seed, e, 1])`, so a run resumed at epoch k with the saved weights
and optimizer state continues bit-identically without any saved generator state.
"""

from __future__ import annotations

import functools
import math
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import callbacks as cb
from engine import device_checks, distributed
from engine import rng as _rng
from engine.backend import CPU, backend_of
from engine.config.fit import DEFAULT_BATCH_SIZE, FitConfig
from engine.fused import parallel
from engine.fused.gemm import planned_blas, whole_products
from engine.spec_callbacks import from_config
from engine.streaming import Stream
from engine.train import position
from engine.train.adapt import adapt_layers
from engine.train.errors import TrainingError
from engine.train.executor import Executor
from engine.train.interrupt import StopOnInterrupt
from engine.train.nan_watch import NanWatch, loss_failure
from engine.train.prepare import Data, as_arrays, cast_inputs, prepare, prepare_validation
from engine.train.stream_data import StreamData
from engine.train.tracker import Tracker
from engine.train.trainer import Trainer, get_trainer

if TYPE_CHECKING:
    from engine.distributed.replica import DataParallel
    from engine.models import Model


def _batch_hooks(callbacks: cb.CallbackList) -> bool:
    base = cb.Callback
    return any(
        type(c).on_train_batch_end is not base.on_train_batch_end
        or type(c).on_train_batch_end_lazy is not base.on_train_batch_end_lazy
        or type(c).on_train_batch_begin is not base.on_train_batch_begin
        for c in callbacks.callbacks
    )


def _model_seed(model: Model) -> int:
    if model.seed is None:
        model.seed = int(_rng.generator().integers(2**31 - 1))
    return model.seed


def fit_arguments(config: FitConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Arguments for `fit` from the spec's `fit` section, callbacks built (their files inside
    `run_dir` when one is given)."""
    arguments = config.model_dump(exclude={"callbacks", "distributed"})
    arguments["callbacks"] = [from_config(c, run_dir) for c in config.callbacks]
    return arguments


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
    data = _fit_data(model, x, y, sample_weight, class_weight)
    val: Data | StreamData | None = None
    if validation_data is not None:
        val = (
            StreamData(model, validation_data)
            if isinstance(validation_data, Stream)
            else prepare_validation(validation_data, model)
        )
    elif validation_split and isinstance(data, StreamData):
        raise ValueError(
            "validation_split needs data in memory; give a stream's validation data separately"
        )
    elif validation_split and isinstance(data, Data):
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
    adapt_layers(model, data, distributed.active())
    trainer = get_trainer(model)
    seed = _model_seed(model)
    dp = distributed.active()
    trainer.train_exec.progress = None
    if dp is not None:
        seed = dp.begin(model, trainer, batch_size, data)
        if val is not None:
            val = val.shard(dp.rank, dp.size) if isinstance(val, StreamData) else dp.shard(val)
    reduce = dp.reduce_gradients if dp is not None else None
    steps = data.steps(batch_size, seed, initial_epoch, shuffle)
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
    tracker = Tracker(trainer.compiled, model.output_names)
    val_tracker = Tracker(trainer.compiled, model.output_names)
    batch_hooks = _batch_hooks(callback_list)
    on_device = backend_of(trainer.flat.flat) is not CPU
    watch = NanWatch()
    device_checks.discard()
    rank, world = (0, 1) if dp is None else (dp.rank, dp.size)
    gather = None if dp is None else dp.gather_json
    callback_list.on_train_begin()
    with StopOnInterrupt() as interrupt:
        try:
            for epoch in range(initial_epoch, epochs):
                callback_list.on_epoch_begin(epoch)
                key = [seed, epoch, 1] if dp is None else dp.rng_key(seed, epoch)
                generator = np.random.default_rng(key)
                trainer.train_exec.set_rng(generator)
                tracker.reset()
                watch.reset()
                saved = model._state.position
                start = position.resume_step(saved, epoch, generator, tracker, rank, world)
                if tracker.resumed is not None:
                    _resolve_metrics(
                        trainer, (tracker, val_tracker), data, dp, batch_size, seed, epoch, shuffle
                    )
                model._state.position = None
                live = position.Live(epoch, generator, tracker, start, gather)
                model._state.live_position = live
                batches = _epoch_batches(data, dp, batch_size, seed, epoch, shuffle, start)
                stop = False
                for step, batch in enumerate(batches, start=start):
                    if batch_hooks:
                        callback_list.on_train_batch_begin(step)
                    if batch is None and dp is not None:
                        dp.idle_step(trainer)
                        loss = 0.0
                    else:
                        bx, by, bsw = batch
                        if on_device:
                            device_checks.at(f"epoch {epoch + 1}, step {step + 1}")
                        loss = trainer.train_step(bx, by, bsw, tracker, reduce)
                    live.step = step + 1
                    if batch_hooks:
                        callback_list.on_train_batch_end(step, tracker.logs)
                    stop = interrupt.requested
                    if dp is not None:
                        # Every rank acts on the agreed flag; a signal landing during or after
                        # the agreement stays requested and is agreed on at the next step.
                        loss, model.stop_training, stop = dp.agree(
                            float(loss), model.stop_training, stop
                        )
                        interrupt.requested = interrupt.requested or stop
                    failure = loss_failure(loss, step, watch, tracker)
                    if failure is not None:
                        if model.stop_training:
                            break
                        _raise_bad_loss(failure, epoch)
                    if stop or model.stop_training:
                        break
                failure = watch.failure() if on_device else None
                if failure is not None and not model.stop_training:
                    _raise_bad_loss(failure, epoch)
                if stop if dp is not None else interrupt.requested:
                    position.freeze(live)
                    break
                if dp is not None:
                    dp.reduce_tracker(tracker)
                    dp.check_weights(model, epoch)
                logs = tracker.logs()
                if val is not None:
                    logs.update(
                        (f"val_{k}", v)
                        for k, v in _run_test(trainer, val, batch_size, val_tracker, dp).items()
                    )
                model._state.epoch = epoch + 1
                live.step = 0
                callback_list.on_epoch_end(epoch, logs)
                if model.stop_training:
                    break
        except KeyboardInterrupt:
            model._state.live_position = None  # raised inside a step: no clean position to save
            stop_signal = interrupt.signum or signal.SIGINT
        else:
            stop_signal = _stop_signal(interrupt, dp)
        if stop_signal:
            history.interrupted, history.stop_signal = True, int(stop_signal)
    callback_list.on_train_end()
    model._state.callback_state = callback_list.get_state()
    model._state.live_callbacks = None
    model._state.live_position = None
    return history


def _stop_signal(interrupt: StopOnInterrupt, dp: DataParallel | None) -> int:
    """The signal that stopped fit (0 for none), the same on every rank: a signal reaching
    some ranks only after the last step's agreement is agreed on here, so all ranks end (and
    exit) alike; one landing after this agreement no longer counts, on any rank."""
    mine = (interrupt.signum or signal.SIGINT) if interrupt.requested else 0
    return mine if dp is None else dp.agree_signal(mine)


def _resolve_metrics(
    trainer: Trainer,
    trackers: tuple[Tracker, Tracker],
    data: Data | StreamData,
    dp: DataParallel | None,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool,
) -> None:
    """Resolve the metrics (which accuracy a batch's shapes call for) before a resumed epoch's
    first step, then reset `trackers[0]`, which puts the saved sums back.

    The first training step would do it, but a rank whose shard of the epoch ran out before the
    saved step takes only idle steps, and an epoch resumed at its last step takes none: the
    saved sums would be lost, and under MPI that rank's packed sums would not match the other
    ranks' (MPI aborts the job: "Message truncated"). A test step on this rank's first batch of
    the epoch, into `trackers[1]` (the validation tracker, reset before use), does it instead."""
    tracker, scratch = trackers
    share = dp.share if dp is not None else 0.0
    batches = _epoch_batches(data, dp, batch_size, seed, epoch, shuffle)
    first = next((batch for batch in batches if batch is not None), None)
    getattr(batches, "close", lambda: None)()
    if dp is not None:
        dp.share = share
    if first is not None:
        xs, ys, sw = first
        trainer.test_step(xs, ys, sw, scratch)
        tracker.reset()


def _raise_bad_loss(failure: tuple[str, int], epoch: int) -> None:
    kind, step = failure
    raise TrainingError(f"loss became {kind} at epoch {epoch + 1}, step {step + 1}")


def _fit_data(
    model: Model, x: Any, y: Any, sample_weight: Any, class_weight: dict[Any, float] | None
) -> Data | StreamData:
    """Arrays prepared once, or a Stream read batch by batch (labels come from the stream)."""
    if not isinstance(x, Stream):
        return prepare(model, x, y, sample_weight, class_weight)
    if y is not None or sample_weight is not None or class_weight:
        raise ValueError("with a Stream as x, give no y, sample_weight or class_weight")
    return StreamData(model, x)


def _epoch_batches(
    data: Data | StreamData,
    dp: DataParallel | None,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool,
    start: int = 0,
) -> Iterator[Any]:
    """Epoch `epoch`'s batches from batch `start`; data-parallel, this rank's part of each
    (None: nothing)."""
    if dp is None:
        return data.epoch_batches(batch_size, seed, epoch, shuffle, start)
    if isinstance(data, StreamData):
        return data.shard_batches(dp, batch_size, seed, epoch, shuffle, start)
    return dp.batches(data, batch_size, data.order(seed, epoch, shuffle), start)


def _run_test(
    trainer: Trainer,
    data: Data | StreamData,
    batch_size: int,
    tracker: Tracker,
    dp: DataParallel | None = None,
) -> dict[str, float]:
    """Loss and metrics over `data`; data-parallel, over this rank's shard, summed over ranks."""
    tracker.reset()
    device_checks.at("evaluation")
    for bx, by, bsw in data.batches(batch_size):
        trainer.test_step(bx, by, bsw, tracker)
    device_checks.flush()
    if dp is not None:
        dp.reduce_tracker(tracker)
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
    data = _fit_data(model, x, y, sample_weight, None)
    trainer = get_trainer(model)
    logs = _run_test(
        trainer,
        data,
        batch_size or DEFAULT_BATCH_SIZE,
        Tracker(trainer.compiled, model.output_names),
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
    xs = cast_inputs(model, as_arrays(x, model.input_names, "x"))
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
    device_checks.flush()
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
    if build is None or x is None or isinstance(x, Stream):
        model.graph  # noqa: B018  (raises the 'not built' error)
        return
    build(np.asarray(as_arrays(x, ["input"], "x")[0]).shape)
