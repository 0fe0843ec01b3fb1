"""The optimizer contract shared by every optimizer: config, clipping, weight decay and state.

Keras 3's order of work per step is kept: gradients are clipped (`clipnorm` per variable,
`global_clipnorm` over all of them, or `clipvalue` per element), then decoupled weight decay
`p -= lr * weight_decay * p` is applied, then the optimizer's own update runs, then
`iterations` grows by one. The learning rate (and a schedule) is evaluated at the `iterations`
count from before the step, so the first update sees step 0.

Subclasses name their per-parameter state (`slot_names`) and implement `_update` by calling the
module's pure update function, which works in place on whatever arrays it is given: the
training loop may pass one flat float32 buffer holding every weight, or one array per weight.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from engine.backend import CPU, backend_of
from engine.config.optimizers import BaseOptimizerConfig
from engine.fused import parallel
from engine.optimizers import schedules
from engine.optimizers.schedules import LearningRateSchedule

Array = Any
StateValue = np.ndarray | int | float

# Element-wise NumPy runs on one core but releases the GIL on large arrays, so a large update
# split into two halves on two threads uses both cores; each element sees the same operations
# either way, so results are bit-identical to the unsplit update.
PARALLEL_MIN_SIZE = 1 << 17


def _sum_squares(g: Array) -> float:
    flat = g.reshape(-1)
    return float(flat @ flat)


class Optimizer(ABC):
    """A Keras-style optimizer with a fast in-place path for the training loop.

    Use either the Keras API `apply_gradients([(grad, variable), ...])`, or `build(params,
    segments)` once and then `apply(params, grads)` each step. `grads` are never written to;
    clipping writes into a buffer the optimizer owns.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[BaseOptimizerConfig]]
    scratch_count: ClassVar[int] = 1

    def __init__(self, learning_rate: Any = None, **kwargs: Any) -> None:
        """Keras's arguments by keyword; the learning rate may come first by position."""
        if learning_rate is not None:
            kwargs["learning_rate"] = learning_rate
        self.config = self.config_class(type=self.name, **kwargs)  # type: ignore[call-arg]
        rate = self.config.learning_rate
        self._schedule: LearningRateSchedule | None = (
            None if isinstance(rate, float) else schedules.get(rate)
        )
        self.iterations = 0
        self._slots: dict[str, list[Array]] = {}
        self._scalars: dict[str, float] = dict(self.initial_scalars())
        self._scratch: list[list[Array]] = []
        self._clipped: list[Array] = []
        self._segments: list[slice] | None = None
        self._pending_state: dict[str, StateValue] | None = None
        self._variables: list[Any] | None = None

    @classmethod
    def from_config(cls, config: BaseOptimizerConfig) -> Optimizer:
        """Build from a validated config model (the spec's form)."""
        return cls(**config.model_dump(exclude={"type"}))

    # --- what subclasses provide -------------------------------------------------------------

    def slot_names(self) -> tuple[str, ...]:
        """Per-parameter state arrays this configuration needs (each shaped like the param)."""
        return ()

    def slot_initial_value(self, slot: str) -> float:
        """The value a state array starts at (Adagrad's accumulator starts above zero)."""
        return 0.0

    def initial_scalars(self) -> dict[str, float]:
        """Scalar state carried across steps (Nadam's momentum-schedule product)."""
        return {}

    def next_scalars(self, scalars: dict[str, float], step: int) -> dict[str, float]:
        """Scalar state for the step about to run (`step` counts from 0), computed once per step
        before the per-parameter updates."""
        return scalars

    @abstractmethod
    def _update(
        self, param: Array, grad: Array, slots: dict[str, Array], scratch: list[Array], lr: float
    ) -> None:
        """Update one param array in place (`scratch`: same-shaped buffers to overwrite)."""

    # --- public API ----------------------------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The rate the next update will use (a schedule is evaluated at `iterations`)."""
        if self._schedule is None:
            assert isinstance(self.config.learning_rate, float)
            return self.config.learning_rate
        return float(self._schedule(self.iterations))

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        """Set a constant rate, as `optimizer.learning_rate = 0.01` does in Keras."""
        if self._schedule is not None:
            raise TypeError("the learning rate is a schedule and cannot be set to a constant")
        if not value > 0:
            raise ValueError(f"learning_rate must be positive; got {value:g}")
        self.config.learning_rate = float(value)

    @property
    def built(self) -> bool:
        return bool(self._scratch)

    def build(self, params: Sequence[Array], segments: Sequence[slice] | None = None) -> None:
        """Allocate state shaped like `params`.

        `segments` are the slices of each weight inside a single flat buffer; they make
        `clipnorm` clip each weight by its own norm (as Keras does) and `global_clipnorm` sum
        per weight, so the flat path matches the per-variable path bit for bit.
        """
        if segments is not None and len(params) != 1:
            raise ValueError("segments describe one flat buffer; pass exactly one param array")
        self._segments = list(segments) if segments is not None else None
        self._slots = {
            name: [_full_like(p, self.slot_initial_value(name)) for p in params]
            for name in self.slot_names()
        }
        self._scratch = [
            [backend_of(p).xp.empty_like(p) for _ in range(self.scratch_count)] for p in params
        ]
        clips = self.config.clipnorm or self.config.clipvalue or self.config.global_clipnorm
        self._clipped = [backend_of(p).xp.empty_like(p) for p in params] if clips else []
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.set_state(state)

    def apply(self, params: Sequence[Array], grads: Sequence[Array]) -> None:
        """One update of `params` in place from `grads` (builds state on first use)."""
        if not self.built:
            self.build(params)
        if len(params) != len(self._scratch) or len(grads) != len(params):
            raise ValueError(
                f"the optimizer was built for {len(self._scratch)} arrays; got "
                f"{len(params)} params and {len(grads)} grads"
            )
        lr = self.learning_rate
        grads = self._clip(grads)
        if self.config.weight_decay:
            decay = lr * self.config.weight_decay
            for p, s in zip(params, self._scratch, strict=True):
                backend_of(p).xp.multiply(p, decay, out=s[0])
                p -= s[0]
        self._scalars = self.next_scalars(self._scalars, self.iterations)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            slots = {name: arrays[i] for name, arrays in self._slots.items()}
            self._update_split(p, g, slots, self._scratch[i], lr)
        self.iterations += 1

    def _update_split(
        self, param: Array, grad: Array, slots: dict[str, Array], scratch: list[Array], lr: float
    ) -> None:
        """`_update`, on two threads for large contiguous host arrays (see PARALLEL_MIN_SIZE)."""
        if (
            param.size < PARALLEL_MIN_SIZE
            or backend_of(param) is not CPU
            or not all(a.flags.c_contiguous for a in (param, grad, *slots.values(), *scratch))
        ):
            self._update(param, grad, slots, scratch, lr)
            return
        halves = (slice(0, param.size // 2), slice(param.size // 2, None))
        args = [
            (
                _part(param, part),
                _part(grad, part),
                {name: _part(a, part) for name, a in slots.items()},
                [_part(a, part) for a in scratch],
                lr,
            )
            for part in halves
        ]
        parallel.run([functools.partial(self._update, *half) for half in args])

    def apply_gradients(self, grads_and_vars: Sequence[tuple[Any, Any]]) -> None:
        """Keras's API: update each Variable in place from its gradient (None grads skipped)."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        variables = [v for _, v in pairs]
        if self._variables is None:
            self._variables = variables
        elif [id(v) for v in variables] != [id(v) for v in self._variables]:
            raise ValueError(
                "apply_gradients got a different list of variables than on its first call; "
                "use one optimizer per set of variables"
            )
        grads = [getattr(g, "data", g) for g, _ in pairs]
        self.apply([v.data for v in variables], grads)

    def get_config(self) -> dict[str, Any]:
        """The spec form of this optimizer (`type` plus Keras's arguments)."""
        return self.config.model_dump()

    def get_state(self) -> dict[str, StateValue]:
        """Everything needed to resume bit-identically: iterations, a constant learning rate
        (callbacks may have changed it), scalars and state arrays."""
        state: dict[str, StateValue] = {"iterations": self.iterations}
        if self._schedule is None:
            state["learning_rate"] = self.learning_rate
        state.update(self._scalars)
        for name, arrays in self._slots.items():
            for i, a in enumerate(arrays):
                state[f"{name}/{i}"] = backend_of(a).to_host(a).copy()
        return state

    def set_state(self, state: dict[str, StateValue]) -> None:
        """Restore `get_state()`'s output; before `build` it is kept and applied at build."""
        if not self.built:
            self._pending_state = dict(state)
            return
        constant = {"learning_rate"} if self._schedule is None else set()
        expected = {"iterations", *constant, *self._scalars} | {
            f"{name}/{i}" for name, arrays in self._slots.items() for i in range(len(arrays))
        }
        if set(state) != expected:
            raise ValueError(
                f"optimizer state does not match this {self.name} optimizer: expected keys "
                f"{sorted(expected)}, got {sorted(state)}"
            )
        self.iterations = int(state["iterations"])
        if constant:
            self.learning_rate = float(state["learning_rate"])
        for key in self._scalars:
            self._scalars[key] = float(state[key])
        for name, arrays in self._slots.items():
            for i, a in enumerate(arrays):
                value = np.asarray(state[f"{name}/{i}"])
                if value.shape != tuple(a.shape):
                    raise ValueError(
                        f"optimizer state {name}/{i} has shape {value.shape}; "
                        f"expected {tuple(a.shape)}"
                    )
                a[...] = backend_of(a).asarray(value, dtype=a.dtype)

    # --- clipping ------------------------------------------------------------------------------

    def _pieces(self, arrays: Sequence[Array]) -> list[Array]:
        """The per-weight views: the segments of the flat buffer, or the arrays themselves."""
        if self._segments is None:
            return list(arrays)
        flat = arrays[0].reshape(-1)
        return [flat[s] for s in self._segments]

    def _clip(self, grads: Sequence[Array]) -> Sequence[Array]:
        c = self.config
        if not self._clipped:
            return grads
        if c.clipvalue:
            for g, out in zip(grads, self._clipped, strict=True):
                backend_of(g).xp.clip(g, -c.clipvalue, c.clipvalue, out=out)
            return self._clipped
        pieces, outs = self._pieces(grads), self._pieces(self._clipped)
        if c.clipnorm:
            limit = c.clipnorm
            for g, out in zip(pieces, outs, strict=True):
                backend_of(g).xp.multiply(g, limit, out=out)
                out /= max(math.sqrt(_sum_squares(g)), limit)
            return self._clipped
        assert c.global_clipnorm is not None
        norm = math.sqrt(sum(_sum_squares(g) for g in pieces))
        limit = c.global_clipnorm
        scale = limit * min(1.0 / norm if norm > 0 else math.inf, 1.0 / limit)
        for g, out in zip(grads, self._clipped, strict=True):
            backend_of(g).xp.multiply(g, scale, out=out)
        return self._clipped


def _part(a: Array, part: slice) -> Array:
    """A contiguous slice of an array's elements, as a view."""
    return a.reshape(-1)[part]


def _full_like(p: Array, value: float) -> Array:
    return backend_of(p).xp.full_like(p, value)
