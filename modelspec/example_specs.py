"""The example specs shipped inside the package, and copying one with its data into a folder.

`modelspec/examples/` is package data (the repository's `specs/`), so a plain `pip install` has
the examples too: `modelspec examples iris_mlp --to DIR` writes the spec and the data files its
`data` section names, at the same relative paths, so the copied spec trains from DIR as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

import yaml

from modelspec.diagnostics import did_you_mean

SPEC_SUFFIX = ".yaml"


class ExampleError(Exception):
    """A copy that would overwrite a different file (exit 1), or an unknown name (exit 2)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Example:
    """One shipped example: its name, its one-line description and the files it needs."""

    name: str
    description: str
    files: tuple[str, ...]


def _root() -> Traversable:
    return resources.files("modelspec") / "examples"


def _data_paths(spec: dict[str, object]) -> list[str]:
    """The relative data paths of a spec's `data` section (train, validation, test)."""
    section = spec.get("data")
    splits = section.values() if isinstance(section, dict) else []
    return [s["path"] for s in splits if isinstance(s, dict) and isinstance(s.get("path"), str)]


def _example(entry: Traversable) -> Example:
    spec = yaml.safe_load(entry.read_text(encoding="utf-8"))
    name = entry.name.removesuffix(SPEC_SUFFIX)
    description = " ".join(str(spec.get("description") or "").split())
    return Example(name, description, (entry.name, *_data_paths(spec)))


def examples() -> list[Example]:
    """Every shipped example, by name."""
    entries = [e for e in _root().iterdir() if e.name.endswith(SPEC_SUFFIX) and e.is_file()]
    return [_example(e) for e in sorted(entries, key=lambda e: e.name)]


def find(name: str) -> Example:
    """The example called `name` (with or without `.yaml`); ExampleError with did-you-mean."""
    known = {e.name: e for e in examples()}
    stem = name.removesuffix(SPEC_SUFFIX)
    if stem not in known:
        hint = did_you_mean(stem, known) or f"; `modelspec examples` lists {len(known)}"
        raise ExampleError(f"no example called {name!r}{hint}", exit_code=2)
    return known[stem]


def shipped_file(relative: str) -> Traversable:
    """A file of the shipped examples, by its path relative to the examples folder."""
    node = _root()
    for part in PurePosixPath(relative).parts:
        node = node / part
    return node


def copy_example(example: Example, folder: Path) -> list[Path]:
    """Write the example's spec and data files under `folder`; returns the files written.

    A file already there with the same bytes is left as it is; one with other bytes stops the
    copy before anything is written, so a user's edited spec is never overwritten.
    """
    from engine.atomic import atomic_write_bytes

    if folder.exists() and not folder.is_dir():
        raise ExampleError(f"{folder} is a file, not a folder; give --to a folder", exit_code=2)
    planned = [(folder / name, shipped_file(name).read_bytes()) for name in example.files]
    for target, content in planned:
        if target.exists() and (not target.is_file() or target.read_bytes() != content):
            raise ExampleError(f"{target} already exists and differs; remove it or choose --to")
    written = []
    for target, content in planned:
        if not target.exists():
            try:
                atomic_write_bytes(target, content)
            except OSError as exc:
                raise ExampleError(f"cannot write {target}: {exc.strerror or exc}") from exc
            written.append(target)
    return written
