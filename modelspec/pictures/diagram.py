"""A model's architecture as boxes and arrows, and its Graphviz rendering.

A box per model input and per layer call (a shared layer's later calls are boxes of their own,
tied to the first by a dashed "shares weights" line), an arrow per connection, outputs drawn
with a double border. Graphviz (the `graphviz` package and its `dot` program) lays it out when
installed; `svg_layout` draws it otherwise.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

from engine.spec_graph import SpecGraph
from modelspec.extras import require
from modelspec.infer import INPUT_LAYER, InferredModel, OutputShape


@dataclass(frozen=True)
class Box:
    """One input or layer call: what its label says and how it is drawn."""

    name: str
    type: str
    shape: str
    params: int
    shares: str | None = None
    output: bool = False

    def lines(self, show_shapes: bool, show_params: bool) -> list[str]:
        """The label's lines: name and type, then the asked-for details."""
        lines = [f"{self.name} ({self.type})"]
        if self.shares:
            lines.append(f"shares {self.shares}")
        if show_shapes:
            lines.append(f"output: {self.shape}")
        if show_params and not self.shares:
            lines.append(f"params: {self.params:,}")
        return lines


@dataclass
class Diagram:
    """Boxes in an order where every box follows its inputs; arrows and shares between them."""

    title: str
    boxes: list[Box] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    shares: list[tuple[str, str]] = field(default_factory=list)


def _shape_text(shape: OutputShape | None) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def diagram_of(graph: SpecGraph, model: InferredModel) -> Diagram:
    """The diagram of a checked spec: its resolved graph and the inferred layer table."""
    rows = {row.name: row for row in model.rows}
    diagram = Diagram(model.name)
    for item in graph.inputs:
        shape = model.shapes.get(item.name)
        diagram.boxes.append(Box(item.name, INPUT_LAYER, _shape_text(shape), 0))
    for node in graph.nodes:
        owner = node.shares or node.name
        row = rows.get(owner)
        diagram.boxes.append(
            Box(
                name=node.name,
                type=row.type if row else str(node.config.get("type", "?")),
                shape=_shape_text(model.shapes.get(node.name)),
                params=row.params if row else 0,
                shares=node.shares,
                output=node.name in graph.outputs,
            )
        )
        for source in dict.fromkeys(node.inputs):
            diagram.edges.append((source, node.name))
        if node.shares:
            diagram.shares.append((node.shares, node.name))
    return diagram


def dot_available() -> bool:
    """Graphviz can render here: the Python package imports and the `dot` program is on PATH."""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def to_graphviz(diagram: Diagram, show_shapes: bool, show_params: bool) -> Any:
    """A `graphviz.Digraph`, top to bottom, in Keras's `plot_model` manner."""
    graphviz = require("graphviz", "graph", "Writing a Graphviz diagram")
    dot = graphviz.Digraph(
        diagram.title, graph_attr={"rankdir": "TB", "label": diagram.title, "labelloc": "t"}
    )
    dot.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11")
    for box in diagram.boxes:
        attrs = {"fillcolor": box_fill(box)}
        if box.output:
            attrs["peripheries"] = "2"
        if box.shares:
            attrs["style"] = "rounded,filled,dashed"
        dot.node(box.name, "\n".join(box.lines(show_shapes, show_params)), **attrs)
    for source, target in diagram.edges:
        dot.edge(source, target)
    for owner, call in diagram.shares:
        dot.edge(owner, call, style="dashed", arrowhead="none", constraint="false", color="#888888")
    return dot


def box_fill(box: Box) -> str:
    """Inputs blue, outputs orange, other layers grey."""
    if box.type == INPUT_LAYER:
        return "#dbe9f6"
    return "#fde6cf" if box.output else "#f2f2f2"
