"""Reverse-mode automatic differentiation: `GradientTape` and the `record` hook every op calls.

An op computes its output array, then calls `record(output, inputs, vjp)`. When no tape is
recording (inference, the planned training step) that is one cheap check. When a tape watches
any input, the tape keeps a node; `tape.gradient` walks the nodes backwards, calling each
`vjp(grad_output) -> grads per input` and un-broadcasting as it goes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.tensor import Tensor

Vjp = Callable[[Any], Sequence[Any]]

_active: list[GradientTape] = []


class _Node:
    __slots__ = ("inputs", "output", "vjp")

    def __init__(self, inputs: Sequence[Tensor], output: Tensor, vjp: Vjp) -> None:
        self.inputs = tuple(inputs)
        self.output = output
        self.vjp = vjp


def is_recording() -> bool:
    """True while some tape is recording: ops that skip work for autodiff ask this."""
    return bool(_active)


def record(output: Tensor, inputs: Sequence[Tensor], vjp: Vjp) -> Tensor:
    """Tell every recording tape that watches an input that `output` came from `inputs`."""
    if _active:
        for tape in _active:
            tape._maybe_record(output, inputs, vjp)
    return output


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum a gradient over the axes that broadcasting added or stretched, back to `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class GradientTape:
    """Records operations on watched tensors so their gradients can be computed afterwards.

    As in TensorFlow: trainable Variables are watched automatically, `watch` adds any tensor,
    a source not on the path to the target gets `None`, and a non-persistent tape can answer
    `gradient` once.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._nodes: list[_Node] = []
        self._watched: dict[int, Tensor] = {}
        self._used = False
        self._recording = False

    def __enter__(self) -> GradientTape:
        self._recording = True
        _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._recording = False
        if self in _active:
            _active.remove(self)

    def watch(self, tensor: Any) -> None:
        """Track a tensor (or a nested list of tensors) that is not a trainable Variable."""
        from engine.tensor import Tensor

        if isinstance(tensor, (list, tuple)):
            for item in tensor:
                self.watch(item)
            return
        if not isinstance(tensor, Tensor):
            raise TypeError(f"watch takes tensors; got {type(tensor).__name__}")
        self._watched[id(tensor)] = tensor

    def _is_watched(self, tensor: Tensor) -> bool:
        if id(tensor) in self._watched:
            return True
        if self.watch_accessed_variables and getattr(tensor, "trainable", False):
            self._watched[id(tensor)] = tensor
            return True
        return False

    def _maybe_record(self, output: Tensor, inputs: Sequence[Tensor], vjp: Vjp) -> None:
        if any(self._is_watched(t) for t in inputs):
            self._nodes.append(_Node(inputs, output, vjp))
            self._watched[id(output)] = output

    def stop_recording(self) -> _Paused:
        """A context in which operations are not recorded, as in TensorFlow."""
        return _Paused(self)

    def reset(self) -> None:
        self._nodes.clear()
        self._watched.clear()

    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """d(sum of target) / d(source) for each source, in the structure of `sources`."""
        from engine.tensor import Tensor

        if self._used and not self.persistent:
            raise RuntimeError(
                "a non-persistent GradientTape can compute gradients only once; "
                "use GradientTape(persistent=True) to call gradient() several times"
            )
        self._used = True
        targets = target if isinstance(target, (list, tuple)) else [target]
        seeds = output_gradients
        if seeds is None:
            seeds = [None] * len(targets)
        elif not isinstance(seeds, (list, tuple)):
            seeds = [seeds]
        grads: dict[int, Any] = {}
        for t, seed in zip(targets, seeds, strict=True):
            xp = t.backend.xp
            g = xp.ones_like(t.data) if seed is None else _seed(seed, t)
            grads[id(t)] = grads[id(t)] + g if id(t) in grads else g
        for node in reversed(self._nodes):
            g_out = grads.get(id(node.output))
            if g_out is None:
                continue
            for inp, g_in in zip(node.inputs, node.vjp(g_out), strict=True):
                if g_in is None or not (inp.dtype.is_floating):
                    continue
                g_in = unbroadcast(g_in, inp.shape)
                key = id(inp)
                grads[key] = grads[key] + g_in if key in grads else g_in
        if not self.persistent:
            self._nodes = []

        def lookup(src: Any) -> Any:
            if isinstance(src, (list, tuple)):
                return type(src)(lookup(s) for s in src)
            if isinstance(src, dict):
                return {k: lookup(v) for k, v in src.items()}
            if not isinstance(src, Tensor):
                raise TypeError(f"gradient sources must be tensors; got {type(src).__name__}")
            g = grads.get(id(src)) if self._is_watched(src) else None
            if g is None:
                if unconnected_gradients == "zero":
                    return Tensor(src.backend.xp.zeros_like(src.data))
                return None
            return Tensor(g.astype(src.data.dtype, copy=False))

        return lookup(sources)


def _seed(value: Any, target: Tensor) -> Any:
    """An output gradient as an array of the target's dtype on the target's device."""
    from engine.backend import to_backend
    from engine.tensor import as_tensor

    return to_backend(as_tensor(value, dtype=target.dtype).data, target.backend)


class _Paused:
    def __init__(self, tape: GradientTape) -> None:
        self.tape = tape

    def __enter__(self) -> None:
        if self.tape in _active:
            _active.remove(self.tape)

    def __exit__(self, *exc: object) -> None:
        if self.tape._recording:
            _active.append(self.tape)
