"""The model, training, saving and spec modules import each other in one direction only.

Imports inside functions count (they are how a cycle hides), imports under TYPE_CHECKING do
not. The tensor core (Tensor's operators call the ops, which make Tensors) is one concept
split over files and is not checked here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = (
    "engine.build",
    "engine.models",
    "engine.saving",
    "engine.loading",
    "engine.atomic",
    "engine.spec_callbacks",
    "engine.train",
    "engine.config",
    "engine.spec_graph",
    "modelspec",
)


def _module_names() -> dict[str, Path]:
    names = {}
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("modelspec/**/*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        names[name.removesuffix(".__init__")] = path
    return names


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{a.name}" for a in node.names)
            found.add(node.module)
    resolved = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        resolved.add(name)
    return resolved - {""}


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def test_no_import_cycle_through_models_training_saving_or_the_spec_side() -> None:
    known = _module_names()
    graph = {name: _imports(path, known) - {name} for name, path in known.items()}
    cycles = []
    for name in sorted(graph):
        if not name.startswith(CHECKED):
            continue
        back = [
            other
            for other in sorted(graph[name])
            if other != name and name in _reaches(graph, other)
        ]
        if back:
            cycles.append((name, back))
    assert cycles == []
