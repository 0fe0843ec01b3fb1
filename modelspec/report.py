"""Reporters: diagnostics as text lines, as JSON, as GitHub Actions annotations, or as SARIF.

Each reporter returns a string; the CLI decides where it goes. Text is one line per problem,
`path:line:col: CODE message (fix: hint)`, then a count, as ruff prints. Every format carries
the same fields: code, severity, where (with the end where known), message, fix, did-you-mean.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from modelspec.diagnostics import Diagnostic
from modelspec.sarif import sarif


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def text(diagnostics: Sequence[Diagnostic], files: int) -> str:
    lines = [f"{d.where}: {d.code} {d.message_with_fix}" for d in diagnostics]
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    checked = _plural(files, "file")
    if diagnostics:
        lines.append(
            f"Found {_plural(errors, 'error')} and {_plural(warnings, 'warning')} in {checked}."
        )
    else:
        lines.append(f"All checks passed ({checked}).")
    return "\n".join(lines) + "\n"


def as_json(diagnostics: Sequence[Diagnostic], files: int) -> str:
    return json.dumps([d.as_json() for d in diagnostics], indent=2) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _annotation_place(d: Diagnostic) -> list[str]:
    if d.origin is not None:
        return []
    place = [f"line={d.line}", f"col={d.column}"]
    if d.end_line is not None and d.end_column is not None:
        place += [f"endLine={d.end_line}", f"endColumn={d.end_column}"]
    return place


def github(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """GitHub Actions workflow commands: one `::error`/`::warning` annotation per problem."""
    lines = []
    for d in diagnostics:
        props = ",".join(
            [
                f"file={_escape_property(d.path)}",
                *_annotation_place(d),
                f"title={_escape_property(d.code)}",
            ]
        )
        body = f"{d.code} {d.located_message}"
        lines.append(f"::{d.severity} {props}::{_escape_data(body)}")
    return "".join(line + "\n" for line in lines)


REPORTERS: dict[str, Callable[[Sequence[Diagnostic], int], str]] = {
    "text": text,
    "json": as_json,
    "github": github,
    "sarif": sarif,
}
