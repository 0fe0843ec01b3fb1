"""Our own SVG drawing of a diagram, for machines without Graphviz: boxes in layers, top down.

A box's layer is one below the deepest of its inputs (Sugiyama's layering). An arrow that
skips layers gets a narrow gap kept for it in each layer it crosses, so a skip connection runs
beside the boxes rather than behind them; within a layer, boxes and gaps are ordered by the
mean position of what feeds them (one barycentre pass), which keeps parallel branches apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from modelspec.pictures.diagram import Box, Diagram, box_fill

CHAR_W, LINE_H, PAD = 7.0, 16, 10
GAP_X, GAP_Y, MARGIN, TITLE_H, WAYPOINT_W = 30, 46, 20, 30, 12.0


@dataclass(frozen=True)
class Placed:
    """A box's rectangle in the picture (top-left corner, size) and its label lines."""

    box: Box
    x: float
    y: float
    w: float
    h: float
    lines: tuple[str, ...]


@dataclass
class Layout:
    """Placed boxes, each arrow's points (start, waypoints, end) and the picture's size."""

    boxes: list[Placed]
    routes: dict[tuple[str, str], list[tuple[float, float]]]
    width: float
    height: float


def _depths(diagram: Diagram) -> dict[str, int]:
    depth: dict[str, int] = {}
    for box in diagram.boxes:
        sources = [s for s, t in diagram.edges if t == box.name]
        depth[box.name] = 1 + max((depth[s] for s in sources), default=-1)
    return depth


def _chains(diagram: Diagram, depth: dict[str, int]) -> dict[tuple[str, str], list[str]]:
    """Each arrow as the items it passes: source, one waypoint per layer it crosses, target."""
    return {
        (s, t): [s, *(f"{s}->{t}#{k}" for k in range(1, depth[t] - depth[s])), t]
        for s, t in diagram.edges
    }


def _ordered_layers(
    diagram: Diagram, depth: dict[str, int], chains: dict[tuple[str, str], list[str]]
) -> list[list[str]]:
    """Items per layer, ordered by the mean position of what feeds them (one barycentre pass)."""
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    feeds: dict[str, list[str]] = {}
    for box in diagram.boxes:
        layers[depth[box.name]].append(box.name)
    for (s, _), chain in chains.items():
        for k, item in enumerate(chain[1:], start=1):
            feeds.setdefault(item, []).append(chain[k - 1])
            if k < len(chain) - 1:
                layers[depth[s] + k].append(item)
    slot: dict[str, float] = {}
    for layer in layers:
        layer.sort(key=lambda item: _mean([slot[f] for f in feeds.get(item, []) if f in slot]))
        slot.update({item: i / max(len(layer) - 1, 1) for i, item in enumerate(layer)})
    return layers


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def layout(diagram: Diagram, show_shapes: bool, show_params: bool) -> Layout:
    """Boxes in layers top down; an arrow that skips layers runs through gaps kept for it."""
    depth = _depths(diagram)
    chains = _chains(diagram, depth)
    boxes = {b.name: b for b in diagram.boxes}
    labels = {b.name: tuple(b.lines(show_shapes, show_params)) for b in diagram.boxes}
    rows = _ordered_layers(diagram, depth, chains)

    def size(item: str) -> tuple[float, float]:
        if item not in boxes:
            return WAYPOINT_W, 0.0
        lines = labels[item]
        return max(len(line) for line in lines) * CHAR_W + 2 * PAD, len(lines) * LINE_H + PAD

    row_widths = [sum(size(i)[0] for i in row) + GAP_X * (len(row) - 1) for row in rows]
    width = max([*row_widths, len(diagram.title) * CHAR_W * 1.2]) + 2 * MARGIN
    frames: dict[str, tuple[float, float, float, float]] = {}
    y = float(MARGIN + TITLE_H)
    for row, row_w in zip(rows, row_widths, strict=True):
        row_h = max(size(i)[1] for i in row)
        x = (width - row_w) / 2
        for item in row:
            w, h = size(item)
            frames[item] = (x, y, w, h if item in boxes else row_h)
            x += w + GAP_X
        y += row_h + GAP_Y
    placed = [Placed(boxes[n], *frames[n], labels[n]) for n in boxes]
    routes = {edge: _route(chain, frames) for edge, chain in chains.items()}
    return Layout(placed, routes, width, y - GAP_Y + MARGIN)


def _route(
    chain: list[str], frames: dict[str, tuple[float, float, float, float]]
) -> list[tuple[float, float]]:
    points = []
    for k, item in enumerate(chain):
        x, y, w, h = frames[item]
        if k > 0:
            points.append((x + w / 2, y))
        if k < len(chain) - 1:
            points.append((x + w / 2, y + h))
    return points


def to_svg(diagram: Diagram, show_shapes: bool, show_params: bool) -> str:
    """The whole picture as an SVG document."""
    laid = layout(diagram, show_shapes, show_params)
    at = {p.box.name: p for p in laid.boxes}
    width, height = laid.width, laid.height
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
    parts += [_edge(s, t, points) for (s, t), points in laid.routes.items()]
    parts += [_share(at[owner], at[call]) for owner, call in diagram.shares]
    parts += [_box(p) for p in laid.boxes]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _edge(source: str, target: str, points: list[tuple[float, float]]) -> str:
    """Curves from layer to layer, straight down through each gap kept for the arrow."""
    (x0, y0), path = points[0], [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for k, (x, y) in enumerate(points[1:], start=1):
        if k % 2:
            bend = (y - y0) / 2
            path.append(f"C{x0:.1f},{y0 + bend:.1f} {x:.1f},{y - bend:.1f} {x:.1f},{y:.1f}")
        else:
            path.append(f"L{x:.1f},{y:.1f}")
        x0, y0 = x, y
    return (
        f'<path class="edge" data-from={quoteattr(source)} data-to={quoteattr(target)} '
        f'd="{" ".join(path)}" fill="none" stroke="#444" stroke-width="1.3" '
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
