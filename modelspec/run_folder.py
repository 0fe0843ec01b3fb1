"""A run folder that a failed `train` made and left empty is removed again, so a mistake found
after the lock is taken (a NaN loss at the first step, a resume that does not fit) leaves no
empty `runs/<name>/` behind. Only folders this run made are considered, and only empty ones
are removed (`rmdir` refuses any other), so a folder that existed before, a checkpoint or any
other file is never touched."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def removed_if_left_empty(run_dir: Path) -> Iterator[None]:
    """On an error leaving the block, remove `run_dir` (and the parents made with it) when the
    run made them and they hold no file."""
    made = _missing(run_dir)
    try:
        yield
    except BaseException:
        _remove_empty(made)
        raise


def _missing(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, innermost first."""
    missing: list[Path] = []
    absolute = folder.absolute()
    for path in (absolute, *absolute.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def _remove_empty(made: list[Path]) -> None:
    """Empty folders inside the run folder bottom-up, then the folders made, innermost first;
    the first that is not empty (it holds something of value) ends the removal."""
    if not made:
        return
    for root, _, _ in os.walk(made[0], topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(root)
    for folder in made:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return
