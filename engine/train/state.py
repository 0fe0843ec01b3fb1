"""Per-model training state that is not weights, and saving and restoring it for resume.

Epoch `e`'s shuffle order and dropout randomness derive from the seed and `e` alone, so the
epoch, seed, optimizer state, history and callback state are all a resume needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import callbacks as cb
from engine.train.errors import TrainingError

if TYPE_CHECKING:
    from engine.models import Model
    from engine.train.compile import Compiled
    from engine.train.executor import Executor
    from engine.train.trainer import Trainer


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
    # where the next fit continues its first epoch (engine.train.position), from a checkpoint
    position: dict[str, Any] | None = None
    # the running fit's position now (None at an epoch's end), for a mid-epoch checkpoint
    live_position: Callable[[], dict[str, Any] | None] | None = None

    def invalidate(self) -> None:
        """Forget the plan and per-output choices after the graph changed (compile args stay)."""
        self.compiled = None
        self.trainer = None
        self.inference = None


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
        "position": state.live_position() if state.live_position is not None else None,
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
    model._state.position = state.get("position")
