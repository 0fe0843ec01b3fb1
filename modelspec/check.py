"""The whole check of one spec: load, validate, resolve the graph, infer shapes, semantic checks.

`check_spec(path)` is what `lint`, `summary` and `train` call; it never raises for anything in
the file, returning every problem as a Diagnostic beside whatever could still be inferred.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.spec_graph import GraphProblem, ProblemKind, SpecGraph, resolve
from modelspec import semantics
from modelspec.diagnostics import GRAPH_PROBLEM_CODES, Diagnostic, KeyPath, severity_of
from modelspec.infer import InferredModel, infer
from modelspec.load import SourceMap, diagnostic, load_spec, parse
from modelspec.overrides import relocate
from modelspec.schema import spec_model
from modelspec.validate import Finding, findings


@dataclass
class SpecReport:
    """Everything known about one spec file after checking it."""

    path: str
    data: Any = None
    source_map: SourceMap = field(default_factory=SourceMap)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    spec: BaseModel | None = None
    graph: SpecGraph | None = None
    model: InferredModel | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def unreadable(self) -> bool:
        return any(d.code == "E002" for d in self.diagnostics)

    @property
    def bad_usage(self) -> bool:
        """Exit 2 rather than 1: the file cannot be read, or a `--set` override is malformed
        (E005), which is a mistake on the command line, not in the spec."""
        return self.unreadable or any(d.code == "E005" for d in self.diagnostics)

    def ok(self, strict: bool = False) -> bool:
        return not self.errors and not (strict and self.warnings)


class _Collector:
    """Places findings in the file and drops repeats of a key already blamed."""

    def __init__(self, report: SpecReport) -> None:
        self.report = report
        self.blamed: set[tuple[KeyPath, str]] = {
            (d.key, d.severity) for d in report.diagnostics if d.key
        }

    def add(self, code: str, message: str, key: KeyPath, hint: str | None = None) -> None:
        self.add_finding(Finding(code, message, key, hint))

    def add_finding(self, item: Finding) -> None:
        # A warning at a key (W201 on an unreachable layer) never hides that key's own error.
        blame = (item.key, severity_of(item.code))
        if item.key and blame in self.blamed:
            return
        self.blamed.add(blame)
        r = self.report
        where = (r.path, r.source_map)
        r.diagnostics.append(
            diagnostic(*where, item.code, item.message, item.key, item.hint, item.at_key)
        )


def _invalid_nodes(graph: SpecGraph, bad_keys: set[KeyPath]) -> set[str]:
    """Names of nodes whose entry has a schema error (their shapes cannot be inferred)."""
    return {n.name for n in graph.nodes if any(k[: len(n.path)] == n.path for k in bad_keys)}


def _named_inside(problem: GraphProblem, found: list[Finding]) -> bool:
    """A bad shape whose wrong element the schema names (`shape[1]: should be a valid
    integer; got True`): that one error says it, the graph's whole-shape message would repeat it."""
    where = problem.path
    return problem.kind is ProblemKind.BAD_SHAPE and any(
        len(f.key) > len(where) and f.key[: len(where)] == where for f in found
    )


def check_document(
    data: Any, source_map: SourceMap, report: SpecReport, check_paths: bool = True
) -> SpecReport:
    """Check already-loaded data; `report` carries the path and any loading diagnostics.

    `check_paths=False` skips the data-file existence check (E502), for a spec stored in a run
    folder, whose relative paths point nowhere. Diagnostics come back in file order.
    """
    _check_into(report, data, source_map, check_paths)
    report.diagnostics.sort(key=lambda d: (d.line, d.column, d.code))
    return report


def _check_into(report: SpecReport, data: Any, source_map: SourceMap, check_paths: bool) -> None:
    report.data, report.source_map = data, source_map
    out = _Collector(report)
    if report.errors and data is None:
        return
    if not isinstance(data, dict):
        what = "an empty file" if data is None else f"a {type(data).__name__}"
        out.add(
            "E003",
            f"a spec is a mapping with a `model` section; this is {what}",
            (),
            "see the format in docs/spec-format.md or `modelspec schema`",
        )
        return
    root = spec_model()
    schema_findings: list[Finding] = []
    try:
        report.spec = root.model_validate(data)
    except ValidationError as exc:
        schema_findings = findings(exc, data, root)
    if "model" in data:
        graph, problems = resolve(data["model"])
        report.graph = graph
        # Structural problems first: at a key both blame, the graph's message is the specific one.
        for p in problems:
            if not _named_inside(p, schema_findings):
                out.add(GRAPH_PROBLEM_CODES[p.kind], p.message, p.path, p.hint)
    for item in schema_findings:
        out.add_finding(item)
    if report.graph is None:
        return
    graph = report.graph
    bad_keys = {f.key for f in schema_findings if f.code.startswith("E")}
    given = data.get("name")
    name = given if isinstance(given, str) else Path(report.path).stem
    dtype = "float64" if data.get("dtype") == "float64" else "float32"
    model, shape_problems = infer(graph, name, dtype, _invalid_nodes(graph, bad_keys))
    report.model = model
    for sp in shape_problems:
        out.add(sp.code, sp.message, sp.path, sp.hint)
    base = Path(report.path).parent if check_paths else None
    for problem in semantics.check(data, graph, model, base):
        out.add_finding(problem)


def check_spec(
    path: str | Path, overrides: Sequence[str] | Mapping[str, Any] | None = None
) -> SpecReport:
    """Load and check one spec file: every problem, the validated spec and the layer table."""
    data, source_map, loading = load_spec(path, overrides)
    report = check_document(data, source_map, SpecReport(str(path), diagnostics=loading))
    report.diagnostics = relocate(report.diagnostics, overrides)
    return report


def check_text(text: str, path: str = "<string>") -> SpecReport:
    """Check YAML text as if it were the file at `path` (tests and benchmarks)."""
    data, source_map, loading = parse(text, path)
    return check_document(data, source_map, SpecReport(path, diagnostics=loading))
