"""Shapes, parameter counts, FLOPs and activation memory of a resolved spec graph; no allocation.

Every number comes from the layer classes themselves (`compute_output_shape`, `weight_specs`,
`flops`), so the summary can never disagree with the engine. A shared layer is one row with all
its calls; its parameters count once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.layers import registry
from engine.layers.base import Layer, ShapeError
from engine.spec_graph import GraphNode, Path, SpecGraph

Shape = tuple[int | None, ...]
OutputShape = Shape | list[Shape]

INPUT_LAYER = "InputLayer"
DTYPE_BYTES = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1, "string": 8}


@dataclass
class LayerRow:
    """One line of the summary: a model input, or a layer with every call it gets."""

    name: str
    type: str
    output_shape: OutputShape
    trainable_params: int = 0
    non_trainable_params: int = 0
    flops: int = 0
    activation_bytes: int = 0
    weight_bytes: int = 0
    inputs: list[str] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


@dataclass(frozen=True)
class ShapeProblem:
    """A layer that cannot take what reaches it: a diagnostic code, message, key path and hint."""

    code: str
    message: str
    path: Path
    hint: str | None = None


@dataclass
class InferredModel:
    """The architecture table of a model, plus the totals the summary prints."""

    name: str
    kind: str
    rows: list[LayerRow]
    outputs: list[str]
    chain: bool
    complete: bool
    shapes: dict[str, OutputShape] = field(default_factory=dict)

    def total(self, attribute: str) -> int:
        return sum(int(getattr(r, attribute)) for r in self.rows)


def _elements(shape: OutputShape) -> int:
    if isinstance(shape, list):
        return sum(_elements(s) for s in shape)
    return math.prod(d or 1 for d in shape[1:])


def _display_name(cls: type[Layer]) -> str:
    """Keras's class name, where it differs from the spec type (Input -> InputLayer)."""
    return str(getattr(cls, "display_name", cls.type_name))


def _is_multi(cls: type[Layer]) -> bool:
    return bool(cls.multi_input)


class _Inference:
    """Walks the nodes in graph order, building each layer once from its config."""

    def __init__(self, graph: SpecGraph, dtype: str, skip: set[str]) -> None:
        self.graph = graph
        self.dtype = dtype
        self.skip = skip
        self.problems: list[ShapeProblem] = []
        self.shapes: dict[str, OutputShape] = {}
        self.call_of: dict[str, tuple[str, int]] = {}
        self.layers: dict[str, Layer] = {}
        self.built_for: dict[str, Any] = {}
        self.rows: dict[str, LayerRow] = {}
        self.complete = True

    def inputs(self) -> None:
        for inp in self.graph.inputs:
            shape: Shape = (None, *inp.shape)
            self.shapes[inp.name] = shape
            self.call_of[inp.name] = (inp.name, 0)
            nbytes = _elements(shape) * DTYPE_BYTES.get(inp.dtype, 4)
            self.rows[inp.name] = LayerRow(inp.name, INPUT_LAYER, shape, activation_bytes=nbytes)

    def node(self, node: GraphNode) -> None:
        if node.name in self.skip or any(r not in self.shapes for r in node.inputs):
            self.complete = False
            return
        if node.shares is not None:
            self.shared_call(node)
            return
        type_name = node.config.get("type")
        try:
            cls = registry.get(str(type_name))
            layer = cls.from_config({**node.config, "name": node.name})
        except (KeyError, ValidationError, ValueError, TypeError):
            self.complete = False  # the schema reports why
            return
        arg = self.argument(cls, node)
        if arg is None:
            return
        self.layers[node.name] = layer
        self.built_for[node.name] = arg
        self.call(node, node.name, layer, arg, first=True)

    def argument(self, cls: type[Layer], node: GraphNode) -> Any:
        shapes = [self.shapes[r] for r in node.inputs]
        if _is_multi(cls):
            return shapes
        if len(shapes) != 1:
            self.fail(
                "E306",
                f"{cls.type_name} takes one input; got {len(shapes)}",
                (*node.path, "inputs"),
                "give it a single name in `inputs`, or merge first (Concatenate, Add, ...)",
            )
            return None
        return shapes[0]

    def shared_call(self, node: GraphNode) -> None:
        owner = str(node.shares)
        layer = self.layers.get(owner)
        if layer is None:
            self.complete = False
            return
        arg = self.argument(type(layer), node)
        if arg is None:
            return
        if _strip(arg) != _strip(self.built_for[owner]):
            self.fail(
                "E302",
                f"{node.name!r} shares layer {owner!r}, built for input shape "
                f"{_fmt(self.built_for[owner])}, but its input has shape {_fmt(arg)}",
                (*node.path, "inputs"),
                "shared weights need inputs of the same shape",
            )
            return
        self.call(node, owner, layer, arg, first=False)

    def call(self, node: GraphNode, owner: str, layer: Layer, arg: Any, first: bool) -> None:
        try:
            out = _normalize(layer.compute_output_shape(arg))
            specs = layer.weight_specs(arg) if first else []
            flops = int(layer.flops(arg))
        except ShapeError as exc:
            self.shape_error(node, layer, exc)
            return
        except (ValueError, TypeError, IndexError, ArithmeticError) as exc:
            # A shape rule that fails without a ShapeError still means "cannot take this input".
            self.fail("E301", f"{layer.type_name} {node.name!r}: {exc}", node.path)
            return
        self.shapes[node.name] = out
        index = len(self.rows[owner].connections) if not first else 0
        self.call_of[node.name] = (owner, index)
        connections = ", ".join(
            f"{self.call_of[r][0]}[{self.call_of[r][1]}][0]" for r in node.inputs
        )
        nbytes = _elements(out) * DTYPE_BYTES.get(layer.config.dtype or self.dtype, 4)
        if first:
            itemsize = DTYPE_BYTES.get(layer.config.dtype or self.dtype, 4)
            trainable = sum(s.size for s in specs if s.trainable and layer.trainable)
            total = sum(s.size for s in specs)
            self.rows[owner] = LayerRow(
                owner,
                _display_name(type(layer)),
                out,
                trainable_params=trainable,
                non_trainable_params=total - trainable,
                weight_bytes=total * itemsize,
            )
        row = self.rows[owner]
        row.output_shape = out
        row.flops += flops
        row.activation_bytes += nbytes
        row.inputs.extend(r for r in node.inputs if r not in row.inputs)
        row.connections.append(connections)

    def shape_error(self, node: GraphNode, layer: Layer, exc: ShapeError) -> None:
        code = "E303" if layer.multi_input else "E301"
        if exc.field == "expression":  # a Lambda formula that does not fit its input
            code = "E304"
        path = (*node.path, exc.field) if exc.field and exc.field in node.config else node.path
        self.fail(code, f"{layer.type_name} {node.name!r}: {exc.message}", path, exc.hint)

    def fail(self, code: str, message: str, path: Path, hint: str | None = None) -> None:
        self.problems.append(ShapeProblem(code, message, path, hint))
        self.complete = False


def _normalize(shape: Any) -> OutputShape:
    if isinstance(shape, list) and shape and isinstance(shape[0], (tuple, list)):
        return [tuple(s) for s in shape]
    return tuple(shape)


def _strip(shape: Any) -> Any:
    if isinstance(shape, list):
        return [_strip(s) for s in shape]
    return tuple(shape[1:])


def _fmt(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_fmt(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _is_chain(graph: SpecGraph) -> bool:
    """Keras prints a functional model without "Connected to" when it is a plain chain."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return False
    consumed: list[str] = [r for n in graph.nodes for r in n.inputs]
    return all(len(n.inputs) == 1 and n.shares is None for n in graph.nodes) and len(
        consumed
    ) == len(set(consumed))


def infer(
    graph: SpecGraph, name: str, dtype: str = "float32", skip: set[str] | None = None
) -> tuple[InferredModel, list[ShapeProblem]]:
    """The layer table of `graph`, leaving out nodes in `skip` (invalid) and what they feed."""
    work = _Inference(graph, dtype, skip or set())
    work.inputs()
    for node in graph.nodes:
        work.node(node)
    order = [g.name for g in graph.inputs] + [
        n.name for n in sorted(graph.nodes, key=lambda n: n.path) if n.name in work.rows
    ]
    model = InferredModel(
        name=name,
        kind=graph.kind,
        rows=[work.rows[n] for n in order],
        outputs=list(graph.outputs),
        chain=graph.kind == "sequential" or _is_chain(graph),
        complete=work.complete,
        shapes=work.shapes,
    )
    return model, work.problems
