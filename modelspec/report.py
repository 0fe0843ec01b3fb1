"""Reporters: diagnostics as text lines, as SPEC.md's JSON list, or as GitHub Actions annotations.

Each reporter returns a string; the CLI decides where it goes. Text is one line per problem,
`path:line:col: CODE message (fix: hint)`, then a count, as ruff prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from modelspec.diagnostics import Diagnostic


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def text(diagnostics: Sequence[Diagnostic], files: int) -> str:
    lines = []
    for d in diagnostics:
        fix = f" (fix: {d.hint})" if d.hint else ""
        lines.append(f"{d.path}:{d.line}:{d.column}: {d.code} {d.message}{fix}")
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


def github(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """GitHub Actions workflow commands: one `::error`/`::warning` annotation per problem."""
    lines = []
    for d in diagnostics:
        props = ",".join(
            [
                f"file={_escape_property(d.path)}",
                f"line={d.line}",
                f"col={d.column}",
                f"title={_escape_property(d.code)}",
            ]
        )
        fix = f" (fix: {d.hint})" if d.hint else ""
        lines.append(f"::{d.severity} {props}::{_escape_data(d.code + ' ' + d.message + fix)}")
    return "".join(line + "\n" for line in lines)


REPORTERS: dict[str, Callable[[Sequence[Diagnostic], int], str]] = {
    "text": text,
    "json": as_json,
    "github": github,
}
