"""Our own SVG drawing of a diagram, for machines without Graphviz: boxes in layers, top down.

A box's layer is one below the deepest of its inputs; within a layer boxes are ordered by the
mean position of their inputs (one barycentre pass), which keeps parallel branches apart.
Arrows are curves from the bottom of a box to the top of the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from modelspec.pictures.diagram import Box, Diagram, box_fill

CHAR_W, LINE_H, PAD = 7.0, 16, 10
GAP_X, GAP_Y, MARGIN, TITLE_H = 30, 46, 20, 30


@dataclass(frozen=True)
class Placed:
    """A box's rectangle in the picture (top-left corner, size) and its label lines."""

    box: Box
    x: float
    y: float
    w: float
    h: float
    lines: tuple[str, ...]


def _layers(diagram: Diagram) -> list[list[Box]]:
    depth: dict[str, int] = {}
    for box in diagram.boxes:
        sources = [s for s, t in diagram.edges if t == box.name]
        depth[box.name] = 1 + max((depth[s] for s in sources), default=-1)
    layers: list[list[Box]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for box in diagram.boxes:
        layers[depth[box.name]].append(box)
    slot: dict[str, float] = {}
    for layer in layers:
        layer.sort(key=lambda b: _barycentre(b, diagram, slot))
        slot.update({b.name: i / max(len(layer) - 1, 1) for i, b in enumerate(layer)})
    return layers


def _barycentre(box: Box, diagram: Diagram, slot: dict[str, float]) -> float:
    sources = [slot[s] for s, t in diagram.edges if t == box.name and s in slot]
    return sum(sources) / len(sources) if sources else 0.0


def layout(diagram: Diagram, show_shapes: bool, show_params: bool) -> tuple[list[Placed], float]:
    """Every box placed, and the picture's width."""
    rows: list[list[tuple[Box, tuple[str, ...], float, float]]] = []
    for layer in _layers(diagram):
        row = []
        for box in layer:
            lines = tuple(box.lines(show_shapes, show_params))
            width = max(len(line) for line in lines) * CHAR_W + 2 * PAD
            row.append((box, lines, width, float(len(lines) * LINE_H + PAD)))
        rows.append(row)
    row_widths = [sum(w for _, _, w, _ in row) + GAP_X * (len(row) - 1) for row in rows]
    title_w = len(diagram.title) * CHAR_W * 1.2
    width = max([*row_widths, title_w]) + 2 * MARGIN
    placed, y = [], float(MARGIN + TITLE_H)
    for row, row_w in zip(rows, row_widths, strict=True):
        x = (width - row_w) / 2
        for box, lines, w, h in row:
            placed.append(Placed(box, x, y, w, h, lines))
            x += w + GAP_X
        y += max(h for _, _, _, h in row) + GAP_Y
    return placed, width


def to_svg(diagram: Diagram, show_shapes: bool, show_params: bool) -> str:
    """The whole picture as an SVG document."""
    placed, width = layout(diagram, show_shapes, show_params)
    at = {p.box.name: p for p in placed}
    height = max((p.y + p.h for p in placed), default=TITLE_H) + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="{MARGIN + 8}" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(diagram.title)}</text>',
    ]
    parts += [_edge(at[s], at[t]) for s, t in diagram.edges]
    parts += [_share(at[owner], at[call]) for owner, call in diagram.shares]
    parts += [_box(p) for p in placed]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _edge(source: Placed, target: Placed) -> str:
    x1, y1 = source.x + source.w / 2, source.y + source.h
    x2, y2 = target.x + target.w / 2, target.y
    bend = (y2 - y1) / 2
    return (
        f'<path class="edge" data-from={quoteattr(source.box.name)} '
        f"data-to={quoteattr(target.box.name)} "
        f'd="M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} '
        f'{x2:.1f},{y2:.1f}" fill="none" stroke="#444" stroke-width="1.3" '
        'marker-end="url(#arrow)"/>'
    )


def _share(owner: Placed, call: Placed) -> str:
    x1, y1 = owner.x + owner.w / 2, owner.y + owner.h / 2
    x2, y2 = call.x + call.w / 2, call.y + call.h / 2
    return (
        f'<line class="shares" data-from={quoteattr(owner.box.name)} '
        f"data-to={quoteattr(call.box.name)} "
        f'x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#999" '
        'stroke-dasharray="5,4"><title>shares weights</title></line>'
    )


def _box(p: Placed) -> str:
    dash = ' stroke-dasharray="5,3"' if p.box.shares else ""
    parts = [
        f'<g class="box" id={quoteattr("node-" + p.box.name)}><title>{escape(p.box.name)}</title>',
        f'<rect x="{p.x:.1f}" y="{p.y:.1f}" width="{p.w:.1f}" height="{p.h:.1f}" rx="6" '
        f'fill="{box_fill(p.box)}" stroke="#444"{dash}/>',
    ]
    if p.box.output:
        parts.append(
            f'<rect x="{p.x + 3:.1f}" y="{p.y + 3:.1f}" width="{p.w - 6:.1f}" '
            f'height="{p.h - 6:.1f}" rx="4" fill="none" stroke="#444"/>'
        )
    for i, line in enumerate(p.lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        parts.append(
            f'<text x="{p.x + p.w / 2:.1f}" y="{p.y + PAD / 2 + LINE_H * (i + 0.75):.1f}" '
            f'text-anchor="middle"{weight}>{escape(line)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)
