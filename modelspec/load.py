"""Read a spec file into plain data plus a source map, so every diagnostic can name its line:col.

YAML is parsed with PyYAML's safe loader only (no tags that build Python objects). The source map
records, for every key path, where its key and its value start; a syntax error, a duplicate key
or a bad `--set` override comes back as a diagnostic, never as an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelspec.diagnostics import Diagnostic, KeyPath, severity_of
from modelspec.yaml_hints import syntax_hint

Position = tuple[int, int]
# A spec is small; a document whose aliases expand past this is an attack (billion laughs).
MAX_NODES = 100_000
# libyaml's safe loader when PyYAML was built with it: the same nodes and marks, 10x faster.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALAR_TAGS: dict[tuple[str, tuple[bool, bool]], str] = {}


class _Loader(_BaseLoader):  # type: ignore[valid-type, misc]
    """The safe loader, remembering which tag each plain scalar's text resolved to.

    Resolving runs a handful of regular expressions per scalar in Python, the largest part of
    parsing a spec; specs repeat their words (`type`, `Dense`, `relu`), so `lint` of many files
    mostly finds the answer here. The answer depends only on the text (no path resolvers).
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _SCALAR_TAGS.get(key)
        if tag is None:
            if len(_SCALAR_TAGS) > 50_000:
                _SCALAR_TAGS.clear()
            tag = _SCALAR_TAGS[key] = super().resolve(kind, value, implicit)
        return tag


@dataclass
class SourceMap:
    """1-based line:column of each key path's key (for mapping entries) and value.

    `key_ends` and `value_ends` hold where a key or value ends (the column after its last
    character), for scalars only: a block mapping's end is the start of whatever follows it.
    """

    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)
    key_ends: dict[KeyPath, Position] = field(default_factory=dict)
    value_ends: dict[KeyPath, Position] = field(default_factory=dict)

    def span(self, path: KeyPath, prefer_key: bool = False) -> tuple[Position, Position | None]:
        """Where `path` (or its nearest written ancestor) starts, and ends where known."""
        keys, values = (self.keys, self.key_ends), (self.values, self.value_ends)
        order = (keys, values) if prefer_key else (values, keys)
        for depth in range(len(path), -1, -1):
            sub = tuple(path[:depth])
            for starts, ends in order:
                if sub in starts:
                    return starts[sub], ends.get(sub)
        return (1, 1), None

    def locate(self, path: KeyPath, prefer_key: bool = False) -> Position:
        """Where `path` is written, or its nearest written ancestor (1:1 for nothing)."""
        return self.span(path, prefer_key)[0]


def diagnostic(
    file: str,
    source_map: SourceMap,
    code: str,
    message: str,
    key: KeyPath = (),
    hint: str | None = None,
    prefer_key: bool = False,
) -> Diagnostic:
    """A Diagnostic placed at `key`'s position in `file`."""
    (line, column), end = source_map.span(key, prefer_key)
    end_line, end_column = end if end is not None else (None, None)
    severity = severity_of(code)
    return Diagnostic(code, severity, file, line, column, message, hint, key, end_line, end_column)


def _position(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _end(node: yaml.Node, ends: dict[KeyPath, Position], path: KeyPath) -> None:
    if isinstance(node, yaml.ScalarNode):
        ends[path] = (node.end_mark.line + 1, node.end_mark.column + 1)


_STR_TAG = "tag:yaml.org,2002:str"


def _key(loader: Any, node: yaml.Node) -> Any:
    """A mapping key's value; a plain string key is its node's text (the common case, fast)."""
    if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
        return node.value
    return loader.construct_object(node, deep=True)


class _Mapper:
    """Walks the composed node tree beside the constructed data, recording positions."""

    def __init__(self, loader: Any, file: str) -> None:
        self.loader = loader
        self.file = file
        self.map = SourceMap()
        self.diagnostics: list[Diagnostic] = []
        self.seen: set[int] = set()

    def walk(self, node: yaml.Node, path: KeyPath) -> None:
        self.map.values[path] = _position(node)
        _end(node, self.map.value_ends, path)
        if id(node) in self.seen:  # an alias: its subtree is already mapped
            return
        self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[Any] = set()
            for key_node, value_node in node.value:
                key = _key(self.loader, key_node)
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    key = str(key)
                if key in keys:
                    line, column = _position(key_node)
                    self.diagnostics.append(
                        Diagnostic(
                            "E004",
                            "error",
                            self.file,
                            line,
                            column,
                            f"duplicate key {key!r}",
                            "remove one of the two",
                            (*path, key),
                        )
                    )
                keys.add(key)
                self.map.keys[(*path, key)] = _position(key_node)
                _end(key_node, self.map.key_ends, (*path, key))
                self.walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*path, i))


def parse(text: str, file: str = "<string>") -> tuple[Any, SourceMap, list[Diagnostic]]:
    """YAML text -> (data, source map, diagnostics); data is None when the text is not YAML."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader rejects control characters up front
        return None, SourceMap(), [_syntax_error(exc, file, text)]
    try:
        node = loader.get_single_node()
        if node is None:
            return None, SourceMap(), []
        # Only aliases (`*name`) make a document larger than its text.
        if "*" in text and _expanded_size(node, {}) > MAX_NODES:
            message = f"YAML syntax error: aliases expand the document past {MAX_NODES} values"
            return None, SourceMap(), [Diagnostic("E001", "error", file, 1, 1, message)]
        data = loader.construct_document(node)
        mapper = _Mapper(loader, file)
        mapper.walk(node, ())
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        # PyYAML raises plain ValueError/TypeError for some scalars (bad dates, unhashable keys).
        return None, SourceMap(), [_syntax_error(exc, file, text)]
    finally:
        loader.dispose()
    return data, mapper.map, mapper.diagnostics


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values the document has once aliases are expanded (memoized: linear time)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # an alias cycle counts once instead of recursing forever
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    memo[id(node)] = size
    return size


def _syntax_error(exc: Exception, file: str, text: str = "") -> Diagnostic:
    """E001 at the parser's mark where it has one, with the fix for tabs and bad indents."""
    line, column, message = 1, 1, str(exc)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    elif isinstance(exc, yaml.reader.ReaderError):
        message = f"unacceptable character #x{exc.character:04x} at offset {exc.position}"
    message = " ".join(message.split())
    marked = isinstance(exc, yaml.MarkedYAMLError)
    better = syntax_hint(text, line, column, message) if marked else None
    if better is None:
        return Diagnostic("E001", "error", file, line, column, f"YAML syntax error: {message}")
    return Diagnostic(
        "E001",
        "error",
        file,
        better.line,
        better.column,
        f"YAML syntax error: {better.message}",
        better.hint,
    )


def _set_path(data: Any, dotted: str, value: Any) -> str | None:
    """Set `a.b.0.c` in nested data; returns an error message instead of raising."""
    parts = dotted.split(".")
    target = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        key: str | int = part
        if isinstance(target, list):
            if not part.lstrip("-").isdecimal() or not -len(target) <= int(part) < len(target):
                return f"{'.'.join(parts[: i + 1])!r}: no list item {part!r}"
            key = int(part)
        elif not isinstance(target, dict):
            return f"{'.'.join(parts[:i])!r} is not a mapping or list"
        if last:
            target[key] = value
        else:
            if isinstance(target, dict) and key not in target:
                target[key] = {}
            target = target[key]
    return None


def apply_overrides(
    data: Any, overrides: Sequence[str] | Mapping[str, Any], file: str
) -> list[Diagnostic]:
    """Apply `--set` overrides (`fit.epochs=3`, values read as YAML) to data in place."""
    items: list[tuple[str, Any]] = []
    problems: list[Diagnostic] = []
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        for text in overrides:
            key, sep, raw = text.partition("=")
            if not sep or not key.strip():
                message = f"override {text!r} is not KEY=VALUE"
                problems.append(Diagnostic("E005", "error", file, 1, 1, message, origin=text))
                continue
            try:
                value = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                value = raw
            items.append((key.strip(), value))
    for key, value in items:
        error = "the spec is not a mapping" if not isinstance(data, dict) else None
        error = error or _set_path(data, key, value)
        if error:
            origin = f"{key}={value}"
            problems.append(Diagnostic("E005", "error", file, 1, 1, error, origin=origin))
    return problems


def load_spec(
    path: str | Path, overrides: Sequence[str] | Mapping[str, Any] | None = None
) -> tuple[Any, SourceMap, list[Diagnostic]]:
    """Read a spec file: (data, source map, diagnostics). Unreadable files give code E002."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return (
            None,
            SourceMap(),
            [Diagnostic("E002", "error", file, 1, 1, f"cannot read {file}: {reason}")],
        )
    data, source_map, diagnostics = parse(text, file)
    if overrides and data is not None:
        diagnostics += apply_overrides(data, overrides, file)
    return data, source_map, diagnostics
