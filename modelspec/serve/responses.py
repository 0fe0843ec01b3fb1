"""Pydantic models of `POST /predict`'s answers, made from the model's outputs, for OpenAPI.

The columns are the ones `modelspec predict` writes (the training target's name, one column per
class for probabilities), found by asking `Predictor.columns` about one sample of zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field, create_model

from modelspec.predictor import Predictor


class Problem(BaseModel):
    """Why a request was refused: the message names the field or the limit."""

    detail: str


def predict_response(predictor: Predictor) -> type[BaseModel]:
    """`{"predictions": [...], "probabilities": [...]}` with this model's columns and types."""
    sample = {
        s.name: np.zeros((1, *(d or 1 for d in s.shape)), np.float32)
        for s in predictor.signature.outputs
    }
    labels = _row_model("Prediction", predictor.columns(sample))
    probabilities = _row_model("Probabilities", predictor.columns(sample, probabilities=True))
    return create_model(
        "PredictResponse",
        predictions=(list[labels], ...),  # type: ignore[valid-type]
        probabilities=(list[probabilities] | None, None),  # type: ignore[valid-type]
    )


def _row_model(name: str, columns: dict[str, list[Any]]) -> Any:
    fields: dict[str, Any] = {
        f"f{i}": (type(values[0]), Field(alias=column))
        for i, (column, values) in enumerate(columns.items())
    }
    return create_model(name, **fields)
