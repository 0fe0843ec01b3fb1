"""The number types of a request body: JSON's true, false and text are never numbers, and a
whole number written as a float (`2.0`, as `ndarray.tolist()` writes it) is still an integer
for an integer input, as Keras's predict casts it."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from engine.data import InputSpec
from modelspec.serve.bodies import _sample_type


def _adapter(dtype: str) -> TypeAdapter[object]:
    return TypeAdapter(_sample_type(InputSpec("tokens", (3,), dtype), batch=True))


def test_an_integer_input_takes_whole_numbers_written_as_floats() -> None:
    assert _adapter("int32").validate_json("[[1, 2.0, 3]]") == [[1, 2, 3]]


@pytest.mark.parametrize("body", ["[[1, 2.5, 3]]", "[[1, true, 3]]", '[[1, "2", 3]]'])
def test_an_integer_input_refuses_fractions_booleans_and_text(body: str) -> None:
    with pytest.raises(ValidationError):
        _adapter("int64").validate_json(body)


@pytest.mark.parametrize("body", ["[[1, false, 3]]", '[[1, "2.5", 3]]'])
def test_a_float_input_refuses_booleans_and_text(body: str) -> None:
    with pytest.raises(ValidationError):
        _adapter("float32").validate_json(body)


def test_a_float_input_takes_integers() -> None:
    assert _adapter("float32").validate_json("[[1, 2.5, 3]]") == [[1.0, 2.5, 3.0]]
