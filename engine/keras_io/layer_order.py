"""The order in which Keras 3 lists a Functional model's layers, which names its weight groups.

Keras stores a layer's weights under `layers/<class in snake_case>[_k]`, numbering layers of
one class in the order of `model.layers`, and rebuilds that order when it loads a model: a
depth-first walk from the outputs numbers each layer when first met; a layer's depth is the
longest path from it to an output; layers come deepest first, ties in walk order. Writing the
groups under the names Keras will look for keeps two Dense layers of equal shapes from
swapping weights.
"""

from __future__ import annotations

from typing import Any

from engine.layers.base import snake_case


def functional_order(graph: Any) -> list[int]:
    """Keras's layer order for a ModelGraph: each entry is a call index, or -1 - input index."""
    producer: dict[int, int] = {slot: -1 - i for i, slot in enumerate(graph.input_slots)}
    producer |= {call.output: index for index, call in enumerate(graph.calls)}

    def parents(node: int) -> list[int]:
        return [] if node < 0 else [producer[s] for s in graph.calls[node].inputs]

    def layer_of(node: int) -> Any:
        return node if node < 0 else id(graph.calls[node].layer)

    first_seen: dict[Any, int] = {}
    representative: dict[Any, int] = {}
    post_order: list[int] = []
    finished: set[int] = set()

    def visit(node: int) -> None:
        if node in finished:
            return
        first_seen.setdefault(layer_of(node), len(first_seen))
        representative.setdefault(layer_of(node), node)
        for parent in parents(node):
            visit(parent)
        finished.add(node)
        post_order.append(node)

    for slot in graph.output_slots:
        visit(producer[slot])
    node_depth: dict[int, int] = {}
    layer_depth: dict[Any, int] = {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(layer_of(node), 0))
        layer_depth[layer_of(node)] = node_depth[node] = depth
        for parent in parents(node):
            node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    layers = sorted(layer_depth, key=lambda key: (-layer_depth[key], first_seen[key]))
    return [representative[key] for key in layers]


def group_names(class_names: list[str]) -> list[str]:
    """`layers/dense`, `layers/dense_1`, ...: Keras's weight group of each layer, in order."""
    used: dict[str, int] = {}
    names = []
    for class_name in class_names:
        stem = snake_case(class_name)
        count = used.get(stem)
        used[stem] = 0 if count is None else count + 1
        names.append(f"layers/{stem}" if count is None else f"layers/{stem}_{count + 1}")
    return names
