"""Problems that a `--set KEY=VALUE` override caused are reported against that override.

The file's line would be wrong (the value is not in the file, or the key is not there at all),
so such a diagnostic names the override it came from and, for a misspelt key or name, the
corrected override.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from modelspec.diagnostics import Diagnostic, KeyPath

Overrides = Sequence[str] | Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Override:
    """One override as the user wrote it: `fit.epochs=3` is key `fit.epochs`, value `3`."""

    key: str
    value: str

    @property
    def text(self) -> str:
        return f"{self.key}={self.value}"

    @property
    def path(self) -> KeyPath:
        """The key path it sets (list indices as ints, as diagnostics name them)."""
        return tuple(int(p) if p.lstrip("-").isdecimal() else p for p in self.key.split("."))


def parse(overrides: Overrides) -> list[Override]:
    """Every well-formed override (malformed ones are E005 already)."""
    if isinstance(overrides, Mapping):
        return [Override(str(k), str(v)) for k, v in overrides.items()]
    parsed = []
    for text in overrides:
        key, sep, value = text.partition("=")
        if sep and key.strip():
            parsed.append(Override(key.strip(), value))
    return parsed


def _corrected(override: Override, diagnostic: Diagnostic) -> str | None:
    """The override with the suggested key or name, when the problem is the override itself."""
    suggestion = diagnostic.did_you_mean
    if suggestion is None or diagnostic.key != override.path:
        return None
    if diagnostic.code == "E101":
        *parents, _ = override.key.split(".")
        return f"--set {'.'.join([*parents, suggestion])}={override.value}"
    return f"--set {override.key}={suggestion}"


def _source(diagnostic: Diagnostic, overrides: list[Override]) -> Override | None:
    """The last override whose key is the diagnostic's key or one of its ancestors."""
    for override in reversed(overrides):
        path = override.path
        if diagnostic.key[: len(path)] == path:
            return override
    return None


def relocate(diagnostics: list[Diagnostic], overrides: Overrides | None) -> list[Diagnostic]:
    """Point each diagnostic caused by an override at that override, with the corrected one."""
    given = parse(overrides or [])
    if not given:
        return diagnostics
    moved = []
    for d in diagnostics:
        source = _source(d, given) if d.key else None
        if source is not None:
            hint = _corrected(source, d) or d.hint
            d = dataclasses.replace(
                d, line=1, column=1, end_line=None, end_column=None, origin=source.text, hint=hint
            )
        moved.append(d)
    return moved
