"""What can go wrong between a Keras file and a modelspec model, one class per kind.

The CLI maps `KerasUnsupportedError` (the file is fine but holds something modelspec will not
run, or a model Keras cannot express) to exit 1, and `KerasArchiveError` (the file is damaged,
or h5py is missing) to exit 2.
"""

from __future__ import annotations

import os


class KerasIOError(ValueError):
    """Base class: a message naming the file and the problem."""


class KerasArchiveError(KerasIOError):
    """The file cannot be read as a Keras model: missing, damaged, not Keras, or no h5py."""

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {detail}")


class KerasUnsupportedError(KerasIOError):
    """A layer, argument or object that has no safe equivalent on the other side."""


class MissingH5pyError(KerasArchiveError):
    """h5py (the `keras` extra) is needed to read or write Keras weights."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(
            path, "reading and writing Keras files needs h5py: pip install 'modelspec[keras]'"
        )


def h5py_module(path: str | os.PathLike[str]) -> object:
    """Import h5py lazily (an optional extra), or say what to install."""
    try:
        import h5py
    except ImportError:
        raise MissingH5pyError(path) from None
    return h5py
