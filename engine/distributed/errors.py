"""Errors of data-parallel training that a user can fix or must know about."""

from __future__ import annotations

from engine.train.errors import TrainingError


class DistributedError(TrainingError):
    """A data-parallel run cannot start or cannot go on (MPI missing, ranks diverged, ...)."""
