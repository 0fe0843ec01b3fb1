"""Keras's compile: the optimizer now, losses per output once built, metrics at the first batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import losses, optimizers
from engine.train.errors import TrainingError

if TYPE_CHECKING:
    from engine.models import Model


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
        resolve_compiled(model)


def resolve_compiled(model: Model) -> Compiled:
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
