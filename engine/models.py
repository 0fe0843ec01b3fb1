"""Sequential, Model and Input: Keras's model API over a graph of layer calls, and its summary text.

A Model is a list of layer calls in an order where each call follows its inputs; every value of
the graph has a slot number, so the training loop (engine.train) runs it on raw arrays
without looking anything up by name. `Sequential` is a Model whose graph is its layer stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import saving
from engine.layers.base import Layer, SymbolicTensor, unique_name
from engine.layers.input_layer import InputLayer
from engine.sizes import readable_size
from engine.tensor import Tensor, Variable
from engine.train import compile as _compile
from engine.train import loops
from engine.train import state as train_state


def Input(  # noqa: N802  (Keras's name for a function that returns a tensor)
    shape: Sequence[int | None],
    dtype: str = "float32",
    name: str | None = None,
    batch_size: int | None = None,
) -> SymbolicTensor:
    """A model input: a placeholder of `shape` (no batch dimension) to call layers on."""
    layer = InputLayer(shape=tuple(shape), dtype=dtype, name=name, batch_size=batch_size)
    return SymbolicTensor(layer.batch_shape, layer.dtype, layer=layer, name=layer.name)


@dataclass(frozen=True)
class GraphCall:
    """One call of a layer: the slots it reads and the slot it writes."""

    layer: Layer
    inputs: tuple[int, ...]
    output: int


@dataclass(frozen=True)
class ModelGraph:
    """A model's calls in run order, with the slots of its inputs and outputs."""

    calls: tuple[GraphCall, ...]
    input_slots: tuple[int, ...]
    output_slots: tuple[int, ...]
    n_slots: int
    slot_shapes: tuple[tuple[int | None, ...], ...]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _topological(outputs: list[SymbolicTensor]) -> list[SymbolicTensor]:
    """Every tensor the outputs depend on, each after the tensors it is computed from."""
    order: list[SymbolicTensor] = []
    done: set[int] = set()
    stack: list[tuple[SymbolicTensor, bool]] = [(t, False) for t in reversed(outputs)]
    while stack:
        tensor, expanded = stack.pop()
        if id(tensor) in done:
            continue
        if expanded:
            done.add(id(tensor))
            order.append(tensor)
            continue
        stack.append((tensor, True))
        stack.extend((t, False) for t in reversed(tensor.inputs) if id(t) not in done)
    return order


class Model:
    """A graph of layers with Keras's training API (compile, fit, evaluate, predict)."""

    def __init__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor] | dict[str, SymbolicTensor] | None = None,
        outputs: SymbolicTensor | Sequence[SymbolicTensor] | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or unique_name(self._default_name())
        self.optimizer: Any = None
        self.compile_config: dict[str, Any] | None = None
        self.history: Any = None
        self.stop_training = False
        self.seed: int | None = None
        self.dtype = "float32"
        self._graph: ModelGraph | None = None
        self._layers: list[Layer] = []
        self._input_tensors: list[SymbolicTensor] = []
        self._output_tensors: list[SymbolicTensor] = []
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._single_input = True
        self._single_output = True
        self._state = train_state.ModelState()
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model needs both `inputs` and `outputs`")
            self._set_graph(inputs, outputs)

    @staticmethod
    def _default_name() -> str:
        return "functional"

    # ----- the graph ---------------------------------------------------------------------
    def _set_graph(self, inputs: Any, outputs: Any) -> None:
        if isinstance(inputs, dict):
            names, in_list = list(inputs), list(inputs.values())
        else:
            in_list = _as_list(inputs)
            names = [t.name or t.layer.name for t in in_list]
        out_list = _as_list(outputs)
        for t in [*in_list, *out_list]:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors; got {t!r}")
        order = _topological(out_list)
        slot = {id(t): i for i, t in enumerate(order)}
        in_ids = {id(t) for t in in_list}
        for t in in_list:
            slot.setdefault(id(t), len(slot))
        calls: list[GraphCall] = []
        for t in order:
            if id(t) in in_ids:
                continue
            if t.layer is None or isinstance(t.layer, InputLayer):
                raise ValueError(
                    f"an output depends on the input {t.name!r}, which is not in Model(inputs=...)"
                )
            calls.append(GraphCall(t.layer, tuple(slot[id(i)] for i in t.inputs), slot[id(t)]))
        shapes: list[tuple[int | None, ...]] = [()] * len(slot)
        for t in [*order, *in_list]:
            shapes[slot[id(t)]] = tuple(t.shape)
        self._graph = ModelGraph(
            tuple(calls),
            tuple(slot[id(t)] for t in in_list),
            tuple(slot[id(t)] for t in out_list),
            len(slot),
            tuple(shapes),
        )
        self._input_tensors, self._output_tensors = in_list, out_list
        self.input_names = names
        self.output_names = [t.layer.name if t.layer is not None else str(t.name) for t in out_list]
        self._single_input = not isinstance(inputs, (list, tuple, dict))
        self._single_output = not isinstance(outputs, (list, tuple))
        layers: list[Layer] = [t.layer for t in in_list if t.layer is not None]
        for call in calls:
            if all(call.layer is not known for known in layers):
                layers.append(call.layer)
        self._layers = layers
        self._state.invalidate()

    @property
    def graph(self) -> ModelGraph:
        if self._graph is None:
            raise ValueError(
                f"model {self.name!r} is not built yet: give its first layer an input_shape, "
                "start it with an Input, or call build(input_shape)"
            )
        return self._graph

    @property
    def built(self) -> bool:
        return self._graph is not None

    @property
    def inputs(self) -> list[SymbolicTensor]:
        return list(self._input_tensors)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        return list(self._output_tensors)

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by position in `layers`, as in Keras."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        known = ", ".join(repr(layer.name) for layer in self.layers)
        raise ValueError(f"no layer named {name!r}; the layers are {known}")

    # ----- weights -----------------------------------------------------------------------
    def _unique(self, pick: Callable[[Layer], list[Variable]]) -> list[Variable]:
        seen: set[int] = set()
        result: list[Variable] = []
        for layer in self._layers:
            for w in pick(layer):
                if id(w) not in seen:
                    seen.add(id(w))
                    result.append(w)
        return result

    @property
    def weights(self) -> list[Variable]:
        return self._unique(lambda layer: layer.weights)

    @property
    def trainable_weights(self) -> list[Variable]:
        return self._unique(lambda layer: layer.trainable_weights)

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return self._unique(lambda layer: layer.non_trainable_weights)

    def count_params(self) -> int:
        return sum(math.prod(w.shape) for w in self.weights)

    def get_weights(self) -> list[np.ndarray]:
        return [w.numpy() for w in self.weights]

    def set_weights(self, values: Sequence[Any]) -> None:
        weights = self.weights
        if len(values) != len(weights):
            raise ValueError(f"model {self.name!r} has {len(weights)} weights; got {len(values)}")
        for w, v in zip(weights, values, strict=True):
            arr = np.asarray(v)
            if tuple(arr.shape) != w.shape:
                raise ValueError(f"weight {w.name!r} has shape {w.shape}; got {arr.shape}")
            w.assign(arr)

    # ----- training API (engine.train does the work) ----------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
    ) -> None:
        """Choose the optimizer, loss(es), metrics and loss weights (strings or objects)."""
        _compile.compile_model(self, optimizer, loss, metrics, loss_weights)

    def fit(self, x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        """Train; returns a History (see engine.train.loops.fit for the arguments)."""
        return loops.fit(self, x, y, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        """The loss (and metrics) on data: a scalar, a list, or a dict with return_dict=True."""
        return loops.evaluate(self, x, y, **kwargs)

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = 0) -> Any:
        """Outputs as NumPy arrays (a list for several outputs)."""
        return loops.predict(self, x, batch_size=batch_size)

    def __call__(self, x: Any, training: bool = False) -> Any:
        """Run the model on concrete data in one batch; Tensors come back."""
        out = self.predict(x, batch_size=max(1, len(_as_list(x)[0])))
        return [Tensor(o) for o in out] if isinstance(out, list) else Tensor(out)

    def get_training_state(self) -> dict[str, Any]:
        """Epoch, seed, optimizer state, history and callback state: enough to resume exactly."""
        return train_state.get_training_state(self)

    def set_training_state(self, state: dict[str, Any]) -> None:
        train_state.set_training_state(self, state)

    # ----- description -------------------------------------------------------------------
    def summary(
        self, line_length: int | None = None, print_fn: Callable[[str], Any] | None = None
    ) -> None:
        """Print Keras 3's summary table as plain text (the CLI prints a rich version)."""
        (print_fn or print)(summary_text(self, line_length))

    def get_config(self) -> dict[str, Any]:
        """The spec's `model` mapping for this model: what from_spec rebuilds and saving stores."""
        graph = self.graph
        names: dict[int, str] = {}
        for t, slot in zip(self._input_tensors, graph.input_slots, strict=True):
            names[slot] = t.name or t.layer.name  # type: ignore[union-attr]
        inputs = [
            {"name": names[slot], "shape": list(t.shape[1:]), "dtype": t.dtype}
            for t, slot in zip(self._input_tensors, graph.input_slots, strict=True)
        ]
        layers: list[dict[str, Any]] = []
        uses: dict[int, int] = {}
        for call in graph.calls:
            count = uses.get(id(call.layer), 0)
            uses[id(call.layer)] = count + 1
            refs = [names[s] for s in call.inputs]
            ref: Any = refs[0] if len(refs) == 1 else refs
            if count == 0:
                name = call.layer.name
                layers.append({**_layer_entry(call.layer), "inputs": ref})
            else:
                name = f"{call.layer.name}_call_{count}"
                layers.append({"name": name, "shares": call.layer.name, "inputs": ref})
            names[call.output] = name
        return {
            "type": "functional",
            "name": self.name,
            "inputs": inputs,
            "layers": layers,
            "outputs": [names[s] for s in graph.output_slots],
        }

    def save(self, path: Any) -> None:
        """Write the model (spec, weights, optimizer state, history) to one file at `path`."""
        saving.save_model(self, path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def _layer_entry(layer: Layer) -> dict[str, Any]:
    entry = layer.get_config()
    entry.pop("input_shape", None)
    return entry


class Sequential(Model):
    """A linear stack of layers; the input comes from an Input, an input_shape, or build()."""

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        self._stack: list[Layer] = []
        self._input: SymbolicTensor | None = None
        for layer in layers or []:
            self.add(layer)

    @staticmethod
    def _default_name() -> str:
        return "sequential"

    def add(self, layer: Any) -> None:
        """Append a layer (or set the input with an Input tensor or InputLayer)."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            self._set_input(layer)
        elif isinstance(layer, InputLayer):
            self._set_input(
                SymbolicTensor(layer.batch_shape, layer.dtype, layer=layer, name=layer.name)
            )
        elif isinstance(layer, Layer):
            if not self._stack and self._input is None and layer.config.input_shape is not None:
                self._input = Input(layer.config.input_shape)
            self._stack.append(layer)
            self._rebuild()
        else:
            raise TypeError(f"Sequential takes layers; got {layer!r}")

    def _set_input(self, tensor: SymbolicTensor) -> None:
        if self._stack:
            raise ValueError("an Input must come before the first layer of a Sequential model")
        self._input = tensor
        self._rebuild()

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Fix the input shape (batch included, as in Keras) and build every layer."""
        if self._input is None:
            self._input = Input(tuple(input_shape)[1:])
        self._rebuild()

    def _rebuild(self) -> None:
        if self._input is None:
            return
        x: SymbolicTensor = self._input
        for layer in self._stack:
            x = layer(x)
        self._set_graph(self._input, x)

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def get_config(self) -> dict[str, Any]:
        graph_input = self._input
        if graph_input is None:
            raise ValueError(f"model {self.name!r} is not built yet: it has no input shape")
        assert isinstance(graph_input.layer, InputLayer)
        head = {
            "type": "Input",
            "name": graph_input.layer.name,
            "shape": list(graph_input.shape[1:]),
            "dtype": graph_input.dtype,
        }
        return {
            "type": "sequential",
            "name": self.name,
            "layers": [head, *(_layer_entry(layer) for layer in self._stack)],
        }


# ----- summary -----------------------------------------------------------------------------
def _format_shape(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _display_type(layer: Layer) -> str:
    return str(getattr(layer, "display_name", type(layer).__name__))


def summary_rows(model: Model) -> list[tuple[str, str, int, str]]:
    """(`name (Type)`, output shape, parameters, connected-to) for each layer, Keras's order."""
    graph = model.graph
    # Keras names a tensor `layer[call][0]`: which call of the layer made it.
    producers: dict[int, str] = {}
    for t, slot in zip(model.inputs, graph.input_slots, strict=True):
        producers[slot] = f"{t.layer.name if t.layer is not None else t.name}[0][0]"
    callers: dict[int, list[str]] = {}
    call_index: dict[int, int] = {}
    for call in graph.calls:
        k = call_index.get(id(call.layer), 0)
        call_index[id(call.layer)] = k + 1
        producers[call.output] = f"{call.layer.name}[{k}][0]"
        callers.setdefault(id(call.layer), []).extend(producers[s] for s in call.inputs)
    rows = []
    for layer in model.layers:
        params = sum(math.prod(w.shape) for w in layer.weights)
        connected = ", ".join(callers.get(id(layer), [])) or "-"
        rows.append(
            (
                f"{layer.name} ({_display_type(layer)})",
                _format_shape(layer.output_shape),
                params,
                connected,
            )
        )
    return rows


def _sequential_like(model: Model) -> bool:
    graph = model.graph
    seen: set[int] = set()
    for call in graph.calls:
        if len(call.inputs) != 1 or id(call.layer) in seen:
            return False
        seen.add(id(call.layer))
    return len(graph.input_slots) == 1 and len(graph.output_slots) == 1


def summary_text(model: Model, line_length: int | None = None) -> str:
    """Keras 3's `model.summary()` table and totals as plain text."""
    rows = summary_rows(model)
    plain = _sequential_like(model)
    header = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    positions = (0.45, 0.80, 1.0) if plain else (0.3, 0.56, 0.74, 1.0)
    length = line_length or (88 if plain else 108)
    widths, current = [], 0
    for pos in positions:
        widths.append(int(pos * length) - current)
        current += widths[-1]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=False)):
            parts.append(cell.rjust(width - 1) + " " if i == 2 else (" " + cell).ljust(width))
        return "".join(parts).rstrip()

    out = [f'Model: "{model.name}"', "_" * length, line(header), "=" * length]
    for i, (name, shape, params, connected) in enumerate(rows):
        out.append(line((name, shape, f"{params:,}", connected)))
        out.append("_" * length if i < len(rows) - 1 else "=" * length)
    if not rows:
        out.append("=" * length)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    nbytes = {id(w): w.data.dtype.itemsize * math.prod(w.shape) for w in model.weights}
    t_bytes = sum(nbytes[id(w)] for w in model.trainable_weights)
    total = model.count_params()
    all_bytes = sum(nbytes.values())
    out += [
        f" Total params: {total:,} ({readable_size(all_bytes)})",
        f" Trainable params: {trainable:,} ({readable_size(t_bytes)})",
        f" Non-trainable params: {total - trainable:,} ({readable_size(all_bytes - t_bytes)})",
    ]
    return "\n".join(out)
