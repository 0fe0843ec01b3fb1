"""Resolve a spec's `model` mapping into a graph of named nodes, shared by the linter and from_spec.

The resolver only follows names: it fills in Keras's automatic layer names, the implicit
`inputs` (the entry above), checks that every reference exists, that there is no cycle, and
orders the nodes so each comes after its inputs. It never validates layer arguments (the spec
schema does) and never prints; problems come back as data, each with the key path to blame.

Sequential: the input is a first `{type: Input, shape, dtype}` entry (it becomes the graph's
input, named `input_layer` unless named) or `input_shape` on the first layer. Functional: the
rules of docs/spec-format.md (`inputs` omitted means the entry just above; on the first entry
the model's only input; `shares` calls an earlier entry's layer again).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.layers.base import snake_case

Path = tuple[str | int, ...]
Shape = tuple[int | None, ...]


_MODEL_KINDS = ("sequential", "functional")
_INPUT_NAME = "input_layer"
_GRAPH_KEYS = ("name", "inputs", "shares")
_INPUT_DTYPES = ("float32", "float64", "int32", "int64", "bool", "string")


@dataclass(frozen=True)
class GraphInput:
    """A model input: name, shape without the batch dimension, dtype, where it is declared."""

    name: str
    shape: Shape
    dtype: str
    path: Path


@dataclass
class GraphNode:
    """One layer call: the layer entry (without name/inputs/shares) and the names it reads."""

    name: str
    config: dict[str, Any]
    inputs: list[str]
    shares: str | None
    path: Path


@dataclass
class SpecGraph:
    """A resolved model: inputs, nodes in an order where every node follows its inputs, outputs."""

    kind: str
    inputs: list[GraphInput] = field(default_factory=list)
    nodes: list[GraphNode] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def node(self, name: str) -> GraphNode | None:
        """The node called `name`, or None (inputs are not nodes)."""
        return next((n for n in self.nodes if n.name == name), None)


class ProblemKind(StrEnum):
    """What is wrong with a model's structure. The engine names the kind; the spec side maps
    each kind to its diagnostic code (`modelspec.diagnostics.GRAPH_PROBLEM_CODES`)."""

    UNDEFINED_NAME = "undefined_name"
    DUPLICATE_NAME = "duplicate_name"
    CYCLE = "cycle"
    BAD_OUTPUT = "bad_output"
    AMBIGUOUS_INPUT = "ambiguous_input"
    BAD_SHARES = "bad_shares"
    NO_INPUT = "no_input"
    BAD_MODEL = "bad_model"
    BAD_SHAPE = "bad_shape"
    UNREACHED = "unreached"
    UNUSED_INPUT = "unused_input"

    @property
    def is_error(self) -> bool:
        """Whether the model cannot be built (the rest only never run or never read data)."""
        return self not in (ProblemKind.UNREACHED, ProblemKind.UNUSED_INPUT)


@dataclass(frozen=True)
class GraphProblem:
    """Something wrong with the model's structure, at a key path of the spec."""

    kind: ProblemKind
    message: str
    path: Path
    hint: str | None = None


class _Resolver:
    """Accumulates problems while one model mapping is resolved."""

    def __init__(self) -> None:
        self.problems: list[GraphProblem] = []

    def problem(self, kind: ProblemKind, message: str, path: Path, hint: str | None = None) -> None:
        self.problems.append(GraphProblem(kind, message, path, hint))

    # ----- pieces shared by both kinds ----------------------------------------------------
    def shape(self, value: Any, path: Path) -> Shape | None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in value
        ):
            self.problem(
                ProblemKind.BAD_SHAPE,
                f"a shape is a list of positive integers (or null); got {value!r}",
                path,
                hint="shapes never include the batch dimension, e.g. shape: [28, 28, 1]",
            )
            return None
        return tuple(value)

    def dtype(self, value: Any, path: Path) -> str:
        if value is None:
            return "float32"
        if value not in _INPUT_DTYPES:
            self.problem(
                ProblemKind.BAD_SHAPE,
                f"input dtype must be one of {', '.join(_INPUT_DTYPES)}; got {value!r}",
                path,
            )
            return "float32"
        return str(value)

    def entries(self, model: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
        items = model.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            self.problem(
                ProblemKind.BAD_MODEL, f"`model.{key}` must be a list; got {_kind(items)}", (key,)
            )
            return []
        good: list[tuple[int, dict[str, Any]]] = []
        for i, item in enumerate(items):
            if isinstance(item, dict) and all(isinstance(k, str) for k in item):
                good.append((i, item))
            else:
                message = f"each entry of `{key}` must be a mapping; got {_kind(item)}"
                self.problem(ProblemKind.BAD_MODEL, message, (key, i))
        return good

    # ----- sequential ---------------------------------------------------------------------
    def sequential(self, model: dict[str, Any]) -> SpecGraph:
        graph = SpecGraph("sequential")
        entries = self.entries(model, "layers")
        for key in ("inputs", "outputs"):
            if key in model:
                self.problem(
                    ProblemKind.BAD_MODEL,
                    f"a sequential model has no `{key}`",
                    (key,),
                    hint="use `type: functional` for a model with named inputs and outputs",
                )
        # The first layer reads the input even when its shape is bad: the shape error is the
        # one to report, not a layer without input.
        previous: str | None = None
        if entries and entries[0][1].get("type") == "Input":
            i, entry = entries.pop(0)
            shape = self.shape(entry.get("shape"), ("layers", i, "shape"))
            given = entry.get("name")
            previous = given if isinstance(given, str) and given else _INPUT_NAME
            if shape is not None:
                dtype = self.dtype(entry.get("dtype"), ("layers", i, "dtype"))
                graph.inputs.append(GraphInput(previous, shape, dtype, ("layers", i)))
        elif entries and "input_shape" in entries[0][1]:
            i, entry = entries[0]
            shape = self.shape(entry["input_shape"], ("layers", i, "input_shape"))
            previous = _INPUT_NAME
            if shape is not None:
                graph.inputs.append(GraphInput(_INPUT_NAME, shape, "float32", ("layers", i)))
        elif entries or not self.problems:
            self.problem(
                ProblemKind.NO_INPUT,
                "the model has no input shape",
                ("layers", entries[0][0]) if entries else ("layers",),
                hint="start `layers` with {type: Input, shape: [...]} or give the first layer "
                "`input_shape`",
            )
        names = _Namer(_explicit_names(e for _, e in entries), graph.inputs)
        for i, entry in entries:
            path: Path = ("layers", i)
            for key in ("inputs", "shares"):
                if key in entry:
                    self.problem(
                        ProblemKind.BAD_MODEL,
                        f"`{key}` only works in a functional model",
                        (*path, key),
                        hint="use `type: functional` to wire layers by name",
                    )
            if entry.get("type") == "Input":
                self.problem(
                    ProblemKind.BAD_MODEL,
                    "an Input entry must come first in a sequential model",
                    (*path, "type"),
                )
                continue
            name = names.take(entry, self, path)
            config = {k: v for k, v in entry.items() if k not in _GRAPH_KEYS}
            graph.nodes.append(GraphNode(name, config, [previous] if previous else [], None, path))
            previous = name
        if graph.nodes:
            graph.outputs = [graph.nodes[-1].name]
        return graph

    # ----- functional ---------------------------------------------------------------------
    def functional(self, model: dict[str, Any]) -> SpecGraph:
        graph = SpecGraph("functional")
        # every named input, a bad shape or not: naming one is not an undefined name
        declared: list[str] = []
        for i, entry in self.entries(model, "inputs"):
            path: Path = ("inputs", i)
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                self.problem(ProblemKind.BAD_MODEL, "every input needs a `name`", path)
                continue
            declared.append(name)
            shape = self.shape(entry.get("shape"), (*path, "shape"))
            if shape is not None:
                dtype = self.dtype(entry.get("dtype"), (*path, "dtype"))
                graph.inputs.append(GraphInput(name, shape, dtype, path))
        if "inputs" not in model:
            self.problem(
                ProblemKind.NO_INPUT,
                "a functional model needs `inputs`",
                (),
                hint="add inputs: [{name: x, shape: [...]}]",
            )
        entries = self.entries(model, "layers")
        input_names = {g.name for g in graph.inputs}
        names = _Namer(_explicit_names(e for _, e in entries), graph.inputs)
        nodes: list[GraphNode] = []
        previous: str | None = declared[0] if len(declared) == 1 else None
        for i, entry in entries:
            path = ("layers", i)
            name = names.take(entry, self, path)
            inputs = self.node_inputs(entry, path, previous, first=not nodes, graph=graph)
            shares = entry.get("shares")
            config = {k: v for k, v in entry.items() if k not in _GRAPH_KEYS}
            if shares is not None:
                shares = self.check_shares(shares, config, path, nodes)
            nodes.append(GraphNode(name, config, inputs, shares, path))
            previous = name
        known = set(declared) | {n.name for n in nodes}
        for node in nodes:
            for j, ref in enumerate(node.inputs):
                if ref not in known:
                    where = (
                        (*node.path, "inputs")
                        if len(node.inputs) == 1
                        else (
                            *node.path,
                            "inputs",
                            j,
                        )
                    )
                    self.problem(
                        ProblemKind.UNDEFINED_NAME,
                        f"`inputs` names {ref!r}, which is neither an input nor a layer"
                        + _suggest(ref, known),
                        where,
                    )
        graph.nodes = self.ordered(nodes, input_names)
        graph.outputs = self.outputs(model, known)
        self.reachability(graph)
        return graph

    def node_inputs(
        self,
        entry: dict[str, Any],
        path: Path,
        previous: str | None,
        first: bool,
        graph: SpecGraph,
    ) -> list[str]:
        value = entry.get("inputs")
        if value is None:
            if previous is None:
                if first and len(graph.inputs) > 1:
                    self.problem(
                        ProblemKind.AMBIGUOUS_INPUT,
                        "the first layer must say which input it reads: the model has "
                        f"{len(graph.inputs)} inputs",
                        path,
                        hint=f"add inputs: {graph.inputs[0].name}",
                    )
                return []
            return [previous]
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
        if isinstance(value, dict):
            return self.named_inputs(entry.get("type"), value, (*path, "inputs"))
        self.problem(
            ProblemKind.BAD_MODEL,
            f"`inputs` is a name or a list of names; got {value!r}",
            (*path, "inputs"),
        )
        return []

    def named_inputs(self, type_name: Any, value: dict[Any, Any], path: Path) -> list[str]:
        """`inputs: {query: x, value: y}`: a layer's named call inputs, as the list of names in
        the layer's call order (`call_ports`); a left-out port before a given one takes its
        default (MultiHeadAttention's key is its value)."""
        ports, defaults = _call_ports(type_name)
        if not ports:
            self.problem(
                ProblemKind.BAD_MODEL,
                f"{type_name} takes `inputs` as a name or a list of names; a mapping names the "
                "call inputs of layers such as MultiHeadAttention",
                path,
            )
            return []
        given: dict[str, str] = {}
        for port, ref in value.items():
            if port not in ports:
                self.problem(
                    ProblemKind.BAD_MODEL,
                    f"{type_name} has no call input {port!r}; it takes "
                    + ", ".join(ports)
                    + _suggest(str(port), ports),
                    (*path, str(port)),
                )
            elif not isinstance(ref, str):
                self.problem(
                    ProblemKind.BAD_MODEL, f"`{port}` names one input or layer", (*path, port)
                )
            else:
                given[port] = ref
        last = max((ports.index(p) for p in given), default=-1)
        names: list[str] = []
        for port in ports[: last + 1]:
            ref = given.get(port) or given.get(defaults.get(port, ""))
            if ref is None:
                self.problem(ProblemKind.BAD_MODEL, f"{type_name} needs `{port}` in `inputs`", path)
                return []
            names.append(ref)
        return names

    def check_shares(
        self, shares: Any, config: dict[str, Any], path: Path, earlier: list[GraphNode]
    ) -> str | None:
        if extra := sorted(config):
            self.problem(
                ProblemKind.BAD_SHARES,
                "an entry with `shares` has only `name`, `shares` and `inputs`; "
                f"remove {', '.join(map(repr, extra))}",
                (*path, extra[0]),
                hint="the shared layer's arguments come from the entry it shares",
            )
        by_name = {n.name: n for n in earlier}
        if not isinstance(shares, str) or shares not in by_name:
            self.problem(
                ProblemKind.BAD_SHARES,
                f"`shares` must name an earlier layer entry; got {shares!r}"
                + (_suggest(shares, by_name) if isinstance(shares, str) else ""),
                (*path, "shares"),
            )
            return None
        target = by_name[shares]
        # Sharing a sharer means sharing the layer it shares.
        return target.shares or target.name

    def ordered(self, nodes: list[GraphNode], input_names: set[str]) -> list[GraphNode]:
        """Nodes in spec order where possible, each after its inputs; cycles become problems."""
        by_name = {n.name: n for n in nodes}
        done: set[str] = set(input_names)
        order: list[GraphNode] = []
        pending = list(nodes)
        while pending:
            ready = [n for n in pending if all(r in done or r not in by_name for r in n.inputs)]
            if not ready:
                cycle = _find_cycle(pending, by_name)
                self.problem(
                    ProblemKind.CYCLE,
                    "these layers feed each other in a cycle: " + " -> ".join(cycle),
                    (*by_name[cycle[0]].path, "inputs"),
                    hint="`inputs` must name an input or an earlier layer",
                )
                return order + pending
            node = ready[0]
            order.append(node)
            done.add(node.name)
            pending.remove(node)
        return order

    def outputs(self, model: dict[str, Any], known: set[str]) -> list[str]:
        value = model.get("outputs")
        if value is None:
            self.problem(
                ProblemKind.BAD_OUTPUT,
                "a functional model needs `outputs`",
                (),
                hint="list the layers whose results the model returns, e.g. outputs: [out]",
            )
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.problem(
                ProblemKind.BAD_OUTPUT, "`outputs` is a name or a list of names", ("outputs",)
            )
            return []
        outputs: list[str] = []
        for j, ref in enumerate(items):
            where: Path = ("outputs",) if isinstance(value, str) else ("outputs", j)
            if not isinstance(ref, str) or ref not in known:
                self.problem(
                    ProblemKind.BAD_OUTPUT,
                    f"output {ref!r} names no input or layer"
                    + (_suggest(ref, known) if isinstance(ref, str) else ""),
                    where,
                )
            elif ref in outputs:
                self.problem(ProblemKind.DUPLICATE_NAME, f"output {ref!r} is listed twice", where)
            else:
                outputs.append(ref)
        return outputs

    def reachability(self, graph: SpecGraph) -> None:
        by_name = {n.name: n for n in graph.nodes}
        needed: set[str] = set()
        stack = list(graph.outputs)
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            node = by_name.get(name)
            if node is not None:
                stack.extend(node.inputs)
                if node.shares:
                    stack.append(node.shares)
        if not graph.outputs or any(p.kind.is_error for p in self.problems):
            return  # reachability in a broken graph would only repeat its errors
        for node in graph.nodes:
            if node.name not in needed:
                self.problem(
                    ProblemKind.UNREACHED,
                    f"layer {node.name!r} reaches no output and would never run",
                    node.path,
                    hint="add it to `outputs` or feed it into a layer that reaches one",
                )
        for inp in graph.inputs:
            if inp.name not in needed:
                self.problem(
                    ProblemKind.UNUSED_INPUT, f"input {inp.name!r} is never used", inp.path
                )


class _Namer:
    """Hands out unique layer names: explicit ones as given, else Keras's `dense`, `dense_1`."""

    def __init__(self, explicit: set[str], inputs: list[GraphInput]) -> None:
        self.explicit = explicit | {g.name for g in inputs}
        self.used: set[str] = {g.name for g in inputs}
        self.counts: dict[str, int] = {}

    def take(self, entry: dict[str, Any], resolver: _Resolver, path: Path) -> str:
        name = entry.get("name")
        if isinstance(name, str) and name:
            if name in self.used:
                resolver.problem(
                    ProblemKind.DUPLICATE_NAME,
                    f"the name {name!r} is used twice",
                    (*path, "name"),
                    hint="every layer and input needs its own name",
                )
            self.used.add(name)
            return name
        if name is not None:
            resolver.problem(
                ProblemKind.BAD_MODEL, f"`name` must be a string; got {name!r}", (*path, "name")
            )
        type_name = entry.get("type")
        stem = snake_case(type_name) if isinstance(type_name, str) and type_name else "layer"
        if "shares" in entry and isinstance(entry["shares"], str):
            stem = entry["shares"]
        while True:
            count = self.counts.get(stem, 0)
            self.counts[stem] = count + 1
            candidate = stem if count == 0 else f"{stem}_{count}"
            if candidate not in self.explicit and candidate not in self.used:
                self.used.add(candidate)
                return candidate


def _call_ports(type_name: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """A layer type's named call inputs and their defaults; empty for other types."""
    from engine.layers import registry

    try:
        cls = registry.get(str(type_name))
    except KeyError:
        return (), {}
    return tuple(cls.call_ports), dict(cls.port_defaults)


def _explicit_names(entries: Iterable[dict[str, Any]]) -> set[str]:
    return {e["name"] for e in entries if isinstance(e.get("name"), str)}


def _find_cycle(pending: list[GraphNode], by_name: dict[str, GraphNode]) -> list[str]:
    """One cycle among nodes that can never become ready, as names with the first repeated."""
    pending_names = {n.name for n in pending}
    start = pending[0].name
    seen: list[str] = []
    name = start
    while name not in seen:
        seen.append(name)
        name = next(r for r in by_name[name].inputs if r in pending_names)
    return [*seen[seen.index(name) :], name]


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return names.get(type(value), repr(value))


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def resolve(model: Any) -> tuple[SpecGraph, list[GraphProblem]]:
    """Resolve a spec's `model` mapping; problem paths start with "model"."""
    resolver = _Resolver()
    if not isinstance(model, dict):
        resolver.problem(
            ProblemKind.BAD_MODEL, f"`model` must be a mapping; got {_kind(model)}", ()
        )
        graph = SpecGraph("sequential")
    else:
        kind = model.get("type", "functional" if "outputs" in model else "sequential")
        if kind not in _MODEL_KINDS:
            resolver.problem(
                ProblemKind.BAD_MODEL,
                f"`model.type` must be sequential or functional; got {kind!r}"
                + (_suggest(str(kind), _MODEL_KINDS)),
                ("type",),
            )
            kind = "sequential"
        graph = resolver.sequential(model) if kind == "sequential" else resolver.functional(model)
    problems = [
        GraphProblem(p.kind, p.message, ("model", *p.path), p.hint) for p in resolver.problems
    ]
    graph.inputs = [GraphInput(g.name, g.shape, g.dtype, ("model", *g.path)) for g in graph.inputs]
    for node in graph.nodes:
        node.path = ("model", *node.path)
    return graph, problems
