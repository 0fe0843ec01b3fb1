"""Data larger than memory: sources read unit by unit, shuffled, prefetched and sharded."""

from engine.streaming.open import (
    STREAM_ABOVE_BYTES,
    data_format,
    open_data,
    open_stream,
    read_whole,
)
from engine.streaming.pipeline import Stream
from engine.streaming.units import BadDataWarning

__all__ = [
    "STREAM_ABOVE_BYTES",
    "BadDataWarning",
    "Stream",
    "data_format",
    "open_data",
    "open_stream",
    "read_whole",
]
