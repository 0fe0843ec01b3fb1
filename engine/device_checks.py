"""Value checks that, on a device, wait for a moment the host syncs anyway.

On the CPU a check reads its values at once. On a GPU every value read is a copy and a sync,
so a training step would stall on each range check. There a check leaves a 0-d flag on the
device instead, with a function that words the error; `flush` reads all flags in one go where
the host reads results anyway (a step's logs, an epoch's end, the end of evaluate or predict)
and raises the first failure's error. The caller keeps the math safe meanwhile (indices
clipped into range), so nothing crashes or reads out of bounds before the flush.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from engine import backend

Array = Any

_lock = threading.Lock()
_pending: list[tuple[Array, Callable[[], str], str]] = []
_where = threading.local()


def on_host(array: Array) -> bool:
    """True when values of `array` can be read without a device sync."""
    return backend.backend_of(array) is backend.CPU


def at(where: str) -> None:
    """Name the step running now ("epoch 2, step 5"), for the errors of checks it defers."""
    _where.text = where


def defer(flag: Array, message: Callable[[], str]) -> None:
    """Raise ValueError(message()) at the next flush if the device's 0-d `flag` is true."""
    where = getattr(_where, "text", "")
    with _lock:
        _pending.append((flag, message, where))


def in_range(xp: Any, ids: Array, size: int, message: Callable[[Array, Array], str]) -> Array:
    """`ids`, checked to lie in [0, size): at once on the host, deferred on a device with the
    ids clipped meanwhile. `message(lo, hi)` words the error from the smallest and largest id."""
    lo, hi = ids.min(), ids.max()
    if on_host(ids):
        if int(lo) < 0 or int(hi) >= size:
            raise ValueError(message(lo, hi))
        return ids
    defer((lo < 0) | (hi >= size), lambda: message(lo, hi))
    return xp.clip(ids, 0, size - 1)


def discard() -> None:
    """Forget pending checks (a new run starts)."""
    with _lock:
        _pending.clear()
    _where.text = ""


def flush() -> None:
    """Read every pending flag with one device read; raise the first failure's error."""
    with _lock:
        pending = _pending[:]
        _pending.clear()
    _where.text = ""  # the loop names each step anew; an eager call after a run names none
    if not pending:
        return
    xp = backend.backend_of(pending[0][0]).xp
    flags = xp.stack([flag for flag, _, _ in pending])
    if not bool(flags.any()):
        return
    _, message, where = pending[int(xp.argmax(flags))]
    raise ValueError(f"{message()} (in {where})" if where else message())
