"""Sizes in bytes as Keras's summary prints them, for the engine's summary and the CLI's."""

from __future__ import annotations


def readable_size(n_bytes: float) -> str:
    """Keras's memory size text: 900.00 B, 1.25 KB, ..."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"
