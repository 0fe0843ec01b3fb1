"""`keras.models`: the model classes and loading a saved one."""

from __future__ import annotations

from engine.loading import load_model
from engine.models import Model, Sequential

__all__ = ["Model", "Sequential", "load_model"]
