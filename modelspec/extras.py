"""Optional libraries (matplotlib, graphviz, tensorboardX) imported when first needed."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(RuntimeError):
    """An optional library is not installed; the message names the pip extra that brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module` or say which extra to install for `purpose`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'modelspec[{extra}]'"
        ) from None
