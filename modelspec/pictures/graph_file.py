"""Architecture diagrams as files: a spec (or a run's stored spec) to DOT, SVG or PNG.

Graphviz lays the diagram out when its `dot` program and Python package are installed;
otherwise SVG comes from our own layout (`svg_layout`) and PNG is refused, naming what to
install. The caller is told which was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.spec_graph import resolve
from modelspec.check import SpecReport
from modelspec.extras import MissingExtraError
from modelspec.infer import infer
from modelspec.pictures.diagram import Diagram, diagram_of, dot_available, to_graphviz
from modelspec.pictures.svg_layout import to_svg

FORMATS = ("svg", "png", "dot")
GRAPHVIZ = "laid out by Graphviz dot"
OWN_LAYOUT = "modelspec's own layout: Graphviz's dot is not installed"
DOT_SOURCE = "DOT source from the graphviz package"


class DiagramError(ValueError):
    """The spec has errors or the format cannot be written here; the message says which."""


@dataclass(frozen=True)
class Rendered:
    """The file's bytes and who laid it out."""

    data: bytes
    renderer: str


def diagram_from(report: SpecReport) -> Diagram:
    """The diagram of a checked spec file; a spec with errors has none."""
    if report.errors or report.graph is None or report.model is None:
        raise DiagramError(f"{report.path}: the spec has errors; `modelspec lint` lists them")
    return diagram_of(report.graph, report.model)


def stored_diagram(spec: dict[str, Any], where: str) -> Diagram:
    """The diagram of the resolved spec a saved model carries (already validated when saved)."""
    section = spec.get("model")
    section = section if isinstance(section, dict) else {}
    graph, problems = resolve(section)
    if graph is None or problems:
        detail = problems[0].message if problems else "it has no model section"
        raise DiagramError(f"{where}: the stored model cannot be drawn: {detail}")
    name = str(spec.get("name") or section.get("name") or "model")
    dtype = "float64" if spec.get("dtype") == "float64" else "float32"
    model, shape_problems = infer(graph, name, dtype)
    if shape_problems:
        raise DiagramError(
            f"{where}: the stored model cannot be drawn: {shape_problems[0].message}"
        )
    return diagram_of(graph, model)


def render(diagram: Diagram, fmt: str, show_shapes: bool, show_params: bool) -> Rendered:
    """The diagram in `fmt` (svg, png or dot)."""
    if fmt not in FORMATS:
        raise DiagramError(f"cannot write .{fmt}; the formats are " + ", ".join(FORMATS))
    if fmt == "dot":
        source = to_graphviz(diagram, show_shapes, show_params).source
        return Rendered(source.encode("utf-8"), DOT_SOURCE)
    if dot_available():
        data = to_graphviz(diagram, show_shapes, show_params).pipe(format=fmt)
        return Rendered(data, GRAPHVIZ)
    if fmt == "png":
        raise MissingExtraError(
            "a PNG diagram needs Graphviz: its dot program (apt-get install graphviz) and "
            "pip install 'modelspec[graph]'; or write .svg, which modelspec can lay out itself"
        )
    return Rendered(to_svg(diagram, show_shapes, show_params).encode("utf-8"), OWN_LAYOUT)
