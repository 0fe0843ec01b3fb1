"""Request bodies of `POST /predict`: pydantic models made from the model's inputs, and parsing.

Three JSON shapes and CSV are accepted, each ending in the table `engine.data.prediction_inputs`
reads, so the server preprocesses exactly as `modelspec predict` does:
- a record (one sample) keyed by the training columns (CSV-trained models) or by input names;
- a list of such records;
- `{"inputs": {name: batch}}`: arrays with a leading batch axis, keyed by input name;
- a CSV body (`text/csv`) with the training columns in its header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    create_model,
)

from engine.data import InputSpec, array_table, csv_table, prediction_inputs
from modelspec.predictor import Predictor

BODY_NAME = "request"
ARRAYS_KEY = "inputs"
_STRICT = ConfigDict(extra="forbid")


class BodyError(ValueError):
    """A request body the server cannot use; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _whole(value: Any) -> Any:
    """A whole number written as a float (`2.0`, as `ndarray.tolist()` writes one) as the
    integer it is, as Keras's predict casts it; anything else is left to the strict check."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Strict: JSON's true, false and "1.5" are not numbers, though pydantic would read them as 1.0,
# 0.0 and 1.5; an integer is still a float, as the OpenAPI page's `number` says.
_FLOAT = Annotated[float, Strict()]
_INT = Annotated[int, Strict(), BeforeValidator(_whole)]


def _sample_type(spec: InputSpec, batch: bool) -> Any:
    """Nested lists of numbers as deep as one sample of `spec` (one deeper with a batch axis)."""
    kind: Any = _INT if spec.dtype.startswith("int") else _FLOAT
    for _ in range(len(spec.shape) + int(batch)):
        kind = list[kind]
    return kind


class RequestModels:
    """The pydantic models of one model's request bodies, and their JSON schema for OpenAPI."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.columns = _record_columns(predictor)
        inputs = predictor.signature.inputs
        if self.columns is not None:
            record = _fields(self.columns, [_FLOAT] * len(self.columns))
        else:
            record = _fields([s.name for s in inputs], [_sample_type(s, False) for s in inputs])
        self.record = create_model("Record", __config__=_STRICT, **record)
        batches = _fields([s.name for s in inputs], [_sample_type(s, True) for s in inputs])
        arrays: Any = create_model("Arrays", __config__=_STRICT, **batches)
        self.arrays = create_model("ArraysRequest", __config__=_STRICT, inputs=(arrays, ...))
        self._records: TypeAdapter[list[BaseModel]] = TypeAdapter(list[self.record])  # type: ignore[name-defined]

    def json_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The body's schema (anyOf the three shapes) and the definitions it refers to."""
        template = "#/components/schemas/{model}"
        shapes: Any = self.record | list[self.record] | self.arrays  # type: ignore[name-defined]
        schema = TypeAdapter(shapes).json_schema(ref_template=template, by_alias=True)
        return {k: v for k, v in schema.items() if k != "$defs"}, schema.get("$defs", {})

    def parse(self, body: bytes, content_type: str) -> dict[str, np.ndarray]:
        """The model's inputs from a request body, or a BodyError naming the field."""
        if not body.strip():
            raise BodyError("empty request body; send JSON records, input arrays or CSV", 400)
        if content_type == "text/csv":
            return self._from_table_text(_text(body))
        if content_type not in ("application/json", ""):
            raise BodyError(
                f"unsupported content type {content_type!r}; use application/json or text/csv",
                415,
            )
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise BodyError(f"the body is not valid JSON: {exc}", 400) from None
        return self._from_json(data)

    def _from_table_text(self, text: str) -> dict[str, np.ndarray]:
        return self._fitted(lambda: csv_table(text, BODY_NAME), schema=True)

    def _from_json(self, data: Any) -> dict[str, np.ndarray]:
        if isinstance(data, Mapping) and set(data) == {ARRAYS_KEY}:
            arrays = _validated(self.arrays, data).model_dump(by_alias=True)[ARRAYS_KEY]
            return self._from_arrays(arrays)
        records = data if isinstance(data, list) else [data]
        try:
            parsed = self._records.validate_python(records)
        except ValidationError as exc:
            raise BodyError(_message(exc, single=not isinstance(data, list))) from None
        rows = [record.model_dump(by_alias=True) for record in parsed]
        if self.columns is not None:
            columns = {name: np.array([r[name] for r in rows]) for name in self.columns}
            return self._fitted(lambda: array_table(columns, BODY_NAME, "csv"), schema=True)
        names = [s.name for s in self.predictor.signature.inputs]
        return self._from_arrays({name: [r[name] for r in rows] for name in names})

    def _from_arrays(self, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
        stacked = {name: _array(name, value) for name, value in arrays.items()}
        return self._fitted(lambda: array_table(stacked, BODY_NAME, "npz"), schema=False)

    def _fitted(self, table: Any, *, schema: bool) -> dict[str, np.ndarray]:
        """Arrays keyed by input name are read as named; columns by the stored data schema."""
        from engine.data import DataError

        stored = self.predictor.schema if schema else None
        try:
            return prediction_inputs(table(), self.predictor.signature, stored)
        except DataError as exc:
            raise BodyError(str(exc)) from None


def _fields(names: list[str], types: list[Any]) -> dict[str, Any]:
    """Pydantic fields for any key (a column may not be a Python name): aliases carry the keys."""
    return {
        f"f{i}": (kind, Field(alias=name))
        for i, (name, kind) in enumerate(zip(names, types, strict=True))
    }


def _record_columns(predictor: Predictor) -> list[str] | None:
    """The training CSV's input columns, in the model's input order; None for array data."""
    schema = predictor.schema
    if schema is None or schema.format != "csv":
        return None
    return [c for s in predictor.signature.inputs for c in schema.inputs.get(s.name, [])]


def _validated(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BodyError(_message(exc, single=True)) from None


def _message(exc: ValidationError, *, single: bool) -> str:
    """`field: problem` for the first few errors, the field written as a path into the body."""
    parts = []
    for error in exc.errors()[:3]:
        location = list(error["loc"])
        if single and location and isinstance(location[0], int):
            location = location[1:]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in location)
        parts.append(f"{(where.lstrip('.') or 'body')}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _array(name: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError:
        raise BodyError(
            f"{ARRAYS_KEY}.{name}: ragged nested lists; every sample needs one shape"
        ) from None


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the CSV body is not UTF-8 text: {exc}", 400) from None
