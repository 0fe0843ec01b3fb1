"""`keras.models`: the model classes and loading a saved one."""

from __future__ import annotations

from engine.models import Model, Sequential
from engine.saving import load_model

__all__ = ["Model", "Sequential", "load_model"]
