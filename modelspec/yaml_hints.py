"""Hints for the YAML mistakes people make by hand: tabs and indentation.

PyYAML says where it gave up ("found character that cannot start any token") but not why; a
tab in the indentation or a line indented unlike its neighbours is the usual cause, and the
fix is a one-line change that the diagnostic can name.
"""

from __future__ import annotations

from dataclasses import dataclass

_INDENT_PROBLEMS = (
    "mapping values are not allowed",
    "did not find expected key",
    "did not find expected '-' indicator",
    "expected <block end>",
)


@dataclass(frozen=True)
class SyntaxHint:
    """Where to point, what to say instead of the parser's words, and the fix."""

    line: int
    column: int
    message: str
    hint: str


def _tab_in_indent(lines: list[str], last: int) -> tuple[int, int] | None:
    """1-based (line, column) of the first tab in the indentation of lines 1..last."""
    for number, line in enumerate(lines[:last], start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            return number, indent.index("\t") + 1
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _previous(lines: list[str], line: int) -> int | None:
    """The 1-based number of the last non-blank, non-comment line before `line`."""
    for number in range(line - 1, 0, -1):
        stripped = lines[number - 1].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return None


def _spaces(n: int) -> str:
    return f"{n} space{'' if n == 1 else 's'}"


def _indent_hint(lines: list[str], line: int, column: int, problem: str) -> SyntaxHint | None:
    if not any(p in problem for p in _INDENT_PROBLEMS) or not 0 < line <= len(lines):
        return None
    before = _previous(lines, line)
    here = _indent(lines[line - 1])
    if "mapping values" in problem and ":" in lines[line - 1][: column - 1]:
        hint = "quote a value that contains ': ' (e.g. \"a: b\"), or start the key on its own line"
        return SyntaxHint(line, column, f"a second ':' on line {line}", hint)
    if before is None:
        return None
    above = _indent(lines[before - 1])
    message = (
        f"line {line} is indented by {_spaces(here)} and line {before} by {_spaces(above)}, "
        "so YAML cannot tell which mapping or list it belongs to"
    )
    hint = (
        "indent the keys of one mapping (and the `-` items of one list) to the same column, "
        "with spaces"
    )
    return SyntaxHint(line, here + 1, message, hint)


def syntax_hint(text: str, line: int, column: int, problem: str) -> SyntaxHint | None:
    """A better account of a YAML syntax error at 1-based `line:column`, when it is clear."""
    lines = text.splitlines()
    # A tab may sit legally inside a flow collection, so an earlier one is blamed only when
    # the parser's own words point at a tab.
    tab = _tab_in_indent(lines[line - 1 : line], 1) if 0 < line <= len(lines) else None
    if tab is not None:
        tab = (line, tab[1])
    elif "tab" in problem or "cannot start any token" in problem:
        tab = _tab_in_indent(lines, max(line, 1))
    if tab is not None or "tab" in problem:
        where = tab or (line, 1)
        message = f"a tab character indents line {where[0]}; YAML indents with spaces only"
        return SyntaxHint(*where, message, "replace the tab with spaces (2 per level is usual)")
    return _indent_hint(lines, line, column, problem)
