"""The spec-language commands: `summary`, `lint`, `schema` and `explain`.

Thin wrappers: they expand paths, call modelspec.check, pick a reporter and an exit code
(0 fine, 1 findings, 2 bad usage or an unreadable path).
"""

from __future__ import annotations

import glob
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from modelspec import report as reporters
from modelspec.diagnostics import CODES, Diagnostic, did_you_mean, explain, severity_of

if TYPE_CHECKING:
    from modelspec.check import SpecReport

SPEC_SUFFIXES = (".yaml", ".yml")

# As `train` takes it: check or summarise the spec that a run with these overrides would use.
OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key by dotted path, e.g. model.layers.1.units=64."),
]


class SummaryFormat(str, Enum):
    text = "text"
    json = "json"


class LintFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


def plain_output() -> bool:
    """No colour or terminal control in CI, with NO_COLOR, or when stdout is not a terminal."""
    return bool(os.environ.get("NO_COLOR") or os.environ.get("CI")) or not sys.stdout.isatty()


def console_for(width: int) -> Console:
    if plain_output():
        return Console(
            force_terminal=False, color_system=None, highlight=False, width=width, soft_wrap=False
        )
    return Console(highlight=False)


def _hidden(relative: Path) -> bool:
    """Folders like .git or .github hold YAML that is not a spec: skip them, as ruff does."""
    return any(part.startswith(".") for part in relative.parts)


def expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Spec files named by files, folders (*.yaml/*.yml below, hidden ones skipped) and globs."""
    files: list[Path] = []
    bad: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SPEC_SUFFIXES and p.is_file() and not _hidden(p.relative_to(path))
            )
        elif path.exists() or not glob.has_magic(raw):
            files.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(raw, recursive=True))
            files += [m for m in matches if m.is_file()]
            if not matches:
                bad.append(raw)
    unique = list(dict.fromkeys(files))
    return unique, bad


def _exit_code(reports: list[SpecReport], strict: bool) -> int:
    if any(r.bad_usage for r in reports):
        return 2
    return 0 if all(r.ok(strict) for r in reports) else 1


def lint(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Spec files, folders or globs (default: .).")
    ] = None,
    format: Annotated[LintFormat, typer.Option("--format", help="Output format.")] = (
        LintFormat.text
    ),
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    overrides: OverridesOption = None,
) -> None:
    """Check spec files and report every problem as `path:line:col: CODE message`."""
    from modelspec.check import check_spec

    files, bad = expand(paths or ["."])
    for pattern in bad:
        typer.echo(f"error: {pattern!r} matches no file", err=True)
    reports = [check_spec(f, overrides or []) for f in files]
    found: list[Diagnostic] = [d for r in reports for d in r.diagnostics]
    typer.echo(reporters.REPORTERS[format.value](found, len(files)), nl=False)
    raise typer.Exit(2 if bad else _exit_code(reports, strict))


def summary(
    spec: Annotated[Path, typer.Argument(help="The spec file.")],
    format: Annotated[SummaryFormat, typer.Option("--format", help="Output format.")] = (
        SummaryFormat.text
    ),
    overrides: OverridesOption = None,
) -> None:
    """Print the model's layer table: shapes, parameters, FLOPs and memory, as Keras does."""
    from modelspec import summary as summaries
    from modelspec.check import check_spec

    result = check_spec(spec, overrides or [])
    if result.errors or result.model is None or not result.model.complete:
        typer.echo(reporters.text(result.diagnostics, 1), nl=False, err=True)
        raise typer.Exit(2 if result.bad_usage else 1)
    if result.warnings:
        typer.echo(reporters.text(result.warnings, 1), nl=False, err=True)
    if format is SummaryFormat.json:
        typer.echo(json.dumps(summaries.as_json(result.model), indent=2))
        return
    summaries.print_summary(result.model, console_for(summaries.width(result.model)))


def schema() -> None:
    """Print the JSON Schema of the spec format, for editors' YAML plugins."""
    from modelspec.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


def _code_table() -> Table:
    table = Table(title="Diagnostic codes", title_justify="left")
    table.add_column("code", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("problem")
    for code, entry in CODES.items():
        table.add_row(code, severity_of(code), entry.title)
    return table


def explain_code(
    code: Annotated[
        str | None, typer.Argument(help="A diagnostic code, e.g. E101 (default: list them).")
    ] = None,
) -> None:
    """Explain a diagnostic code, or list every code."""
    if code is None:
        console = Console(highlight=False)
        console.print(_code_table())
        console.print("Explain one with `modelspec explain CODE`.", markup=False)
        return
    if code.upper() not in CODES:
        hint = did_you_mean(code.upper(), CODES) or "; `modelspec explain` lists them"
        typer.echo(f"error: unknown code {code!r}{hint}", err=True)
        raise typer.Exit(2)
    typer.echo(explain(code), nl=False)


def register(app: typer.Typer) -> None:
    app.command()(summary)
    app.command()(lint)
    app.command()(schema)
    app.command("explain")(explain_code)
