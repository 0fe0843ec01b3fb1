"""Which times a file is opened in a block, from Python's audit events (`open`), so a test can
hold a command to reading a file once without patching the code that reads it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

_WATCHED: dict[Path, list[str]] = {}


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _WATCHED and isinstance(args[0], (str, Path)):
        modes = _WATCHED.get(Path(str(args[0])).resolve())
        if modes is not None:
            modes.append(str(args[1]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one is idle outside `opens`


@contextlib.contextmanager
def opens(path: Path) -> Iterator[list[str]]:
    """The mode of each opening of `path` in the block, in order."""
    modes: list[str] = []
    _WATCHED[path.resolve()] = modes
    try:
        yield modes
    finally:
        del _WATCHED[path.resolve()]
