"""Turn pydantic's validation errors into diagnostics placed on the spec's keys, with did-you-mean.

Pydantic reports a union failure once per member; this module keeps the one error a user needs
(the misspelt name rather than "should be a mapping"), finds the model that rejected an unknown
key so it can suggest the right one, and maps each error's location onto the data's key path.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from modelspec.diagnostics import KeyPath, did_you_mean
from modelspec.schema.lazy_union import LazyUnion

# Error types that only say "this union member wanted another kind of value".
_MISMATCH = {
    "model_type",
    "model_attributes_type",
    "dict_type",
    "string_type",
    "list_type",
    "int_type",
    "float_type",
    "bool_type",
    "tuple_type",
    "is_instance_of",
}
_TAG_KIND = {
    "layers": "layer type",
    "layer": "layer type",
    "callbacks": "callback",
    "optimizer": "optimizer",
    "learning_rate": "learning-rate schedule",
    "loss": "loss",
    "metrics": "metric",
    "model": "model type",
}


def _own_code(path: KeyPath) -> str | None:
    """Value errors that have a code of their own: the split range, Lambda formulas."""
    if path == ("fit", "validation_split"):
        return "E501"
    if path and path[-1] == "expression":
        return "E304"
    return None


_TAG_HINTS = {"Input": "a functional model declares its inputs under `model.inputs`"}


@dataclass(frozen=True)
class Finding:
    """A validation problem: code, message, key path, hint, and whether to point at the key."""

    code: str
    message: str
    key: KeyPath
    hint: str | None = None
    at_key: bool = False


def _models_in(annotation: Any) -> set[type[BaseModel]]:
    """Every pydantic model class mentioned anywhere in a type annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    if isinstance(annotation, LazyUnion):
        return annotation.models()
    found: set[type[BaseModel]] = set()
    for arg in typing.get_args(annotation):
        found |= _models_in(arg)
    return found


def _tags(model: type[BaseModel]) -> set[str]:
    field = model.model_fields.get("type")
    if field is None:
        return set()
    return {a for a in typing.get_args(field.annotation) if isinstance(a, str)}


def _field_names(model: type[BaseModel]) -> set[str]:
    names = set(model.model_fields)
    names |= {f.alias for f in model.model_fields.values() if f.alias}
    return names


def _walk(
    data: Any, loc: Iterable[str | int], root: type[BaseModel]
) -> tuple[KeyPath, set[type[BaseModel]]]:
    """The data key path an error location points at, and the models that may own its last key."""
    path: list[str | int] = []
    candidates: set[type[BaseModel]] = {root}
    node = data
    for elem in loc:
        if isinstance(node, dict) and elem in node:
            owners = {c for c in candidates if elem in c.model_fields}
            if owners:
                candidates = set().union(
                    *(_models_in(c.model_fields[str(elem)].annotation) for c in owners)
                )
            path.append(elem)
            node = node[elem]
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            path.append(elem)
            node = node[elem]
        else:
            chosen = {c for c in candidates if c.__name__ == elem or elem in _tags(c)}
            candidates = chosen or candidates
    return tuple(path), candidates


def _expected(ctx: dict[str, Any] | None, key: str) -> list[str]:
    return re.findall(r"'([^']*)'", str((ctx or {}).get(key, "")))


def _describe(key: KeyPath) -> str:
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the document"


def _kind_for(key: KeyPath) -> str:
    names = [p for p in key if isinstance(p, str)]
    return _TAG_KIND.get(names[-1], f"`{names[-1]}` type") if names else "type"


def _finding(error: ErrorDetails, data: Any, root: type[BaseModel]) -> Finding | None:
    kind = error["type"]
    loc = tuple(error["loc"])
    ctx = error.get("ctx")
    given = error.get("input")
    if kind == "missing":
        parent, _ = _walk(data, loc[:-1], root)
        return Finding("E102", f"{_describe(parent)}: missing required key `{loc[-1]}`", parent)
    path, candidates = _walk(data, loc, root)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        known = set().union(*(_field_names(c) for c in candidates)) if candidates else set()
        known.discard("type")
        return Finding(
            "E101",
            f"{_describe(path[:-1])}: unknown key `{name}`" + did_you_mean(name, known),
            path,
            at_key=True,
        )
    if path == ("version",) and kind == "literal_error":
        return Finding("E105", f"unsupported format version {given!r}; this release reads 1", path)
    if kind == "union_tag_invalid":
        tag = str((ctx or {}).get("tag"))
        options = _expected(ctx, "expected_tags")
        message = f"unknown {_kind_for(path)} {tag!r}" + did_you_mean(tag, options)
        hint = _TAG_HINTS.get(tag) if tag not in options else None
        return Finding("E104", message, (*path, "type"), hint)
    if kind == "union_tag_not_found":
        return Finding("E102", f"{_describe(path)}: missing required key `type`", path)
    if kind == "literal_error" and isinstance(given, str):
        options = _expected(ctx, "expected")
        suggestion = did_you_mean(given, options)
        message = f"{_describe(path)}: unknown name {given!r}" + suggestion
        hint = None if suggestion else "expected one of " + ", ".join(options)
        return Finding("E104", message, path, hint=hint)
    message = error["msg"].removeprefix("Input ").removeprefix("Value error, ")
    if "got" not in message:
        message += f"; got {_show(given)}"
    return Finding(_own_code(path) or "E103", f"{_describe(path)}: {message}", path)


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _is_mismatch(error: ErrorDetails) -> bool:
    """A union member that wanted another kind of value: a type error, a name checked against
    something not a name, or a tagged member given something not a mapping."""
    kind, given = error["type"], error.get("input")
    return (
        kind in _MISMATCH
        or (kind == "literal_error" and not isinstance(given, str))
        or (kind == "union_tag_not_found" and not isinstance(given, dict))
    )


def findings(exc: ValidationError, data: Any, root: type[BaseModel]) -> list[Finding]:
    """One finding per real problem in a ValidationError, union noise removed."""
    errors = _merge_literals(exc.errors(include_url=False), data, root)
    resolved = [(e, _walk(data, tuple(e["loc"]), root)[0]) for e in errors]
    real_paths = [p for e, p in resolved if not _is_mismatch(e)]
    # A union member that reached inside the value explains it better than one that wanted
    # another kind of value: `{type: adam, learning_rate: true}` is a bad learning rate, not
    # an optimizer that should have been a name.
    inner_paths = [p for _, p in resolved]
    out: list[Finding] = []
    mismatch_paths: set[KeyPath] = set()
    for error, path in resolved:
        if _is_mismatch(error):
            if (
                any(p[: len(path)] == path for p in real_paths)
                or any(len(p) > len(path) and p[: len(path)] == path for p in inner_paths)
                or path in mismatch_paths
            ):
                continue
            mismatch_paths.add(path)
        finding = _finding(error, data, root)
        if finding is not None and finding not in out:
            out.append(finding)
    return _drop_missing_explained_by_typo(out)


def _options(error: ErrorDetails) -> str:
    return str((error.get("ctx") or {}).get("expected", ""))


def _merge_literals(
    errors: list[ErrorDetails], data: Any, root: type[BaseModel]
) -> list[ErrorDetails]:
    """A name checked against a union of Literals fails once per Literal: join the options."""
    merged: list[ErrorDetails] = []
    first_at: dict[KeyPath, ErrorDetails] = {}
    for error in errors:
        if error["type"] != "literal_error" or not isinstance(error.get("input"), str):
            merged.append(error)
            continue
        path = _walk(data, tuple(error["loc"]), root)[0]
        if path in first_at:
            first = first_at[path]
            first["ctx"] = {"expected": f"{_options(first)}, {_options(error)}"}
            continue
        first_at[path] = {**error, "ctx": {"expected": _options(error)}}
        merged.append(first_at[path])
    return merged


def _drop_missing_explained_by_typo(items: list[Finding]) -> list[Finding]:
    """`unit: 3` gives unknown `unit` and missing `units`: the first says it all."""
    suggested = {
        (f.key[:-1], m.group(1))
        for f in items
        if f.code == "E101" and (m := re.search(r"did you mean '([^']*)'", f.message))
    }
    return [
        f
        for f in items
        if not (f.code == "E102" and (f.key, f.message.rsplit("`", 2)[-2]) in suggested)
    ]
