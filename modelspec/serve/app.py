"""The FastAPI application: `POST /predict`, `GET /health`, `GET /metadata` and the OpenAPI page.

The model is loaded once, before the application is made; every request body is read within a
size limit and parsed by `bodies.RequestModels`, so bad input is a 4xx naming the field and only
a fault of the server itself can be a 500.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from modelspec.predictor import Predictor
from modelspec.serve.batching import MicroBatcher
from modelspec.serve.bodies import BodyError, RequestModels
from modelspec.serve.responses import Problem, predict_response

ENV_SETTINGS = "MODELSPEC_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServeSettings:
    """What `modelspec serve` was asked for; passed to worker processes as JSON."""

    model: str
    max_delay_ms: float = 2.0
    max_batch_rows: int = 256
    max_body_bytes: int = 1 << 20

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        return cls(**json.loads(os.environ[ENV_SETTINGS]))


def app_from_env() -> FastAPI:
    """The uvicorn factory of each worker process: settings from the environment."""
    settings = ServeSettings.from_env()
    return create_app(Predictor.load(Path(settings.model)), settings)


def create_app(predictor: Predictor, settings: ServeSettings) -> FastAPI:
    """The application serving `predictor` (already loaded: a damaged model never gets here)."""
    batcher = MicroBatcher(
        predictor.predict, settings.max_delay_ms / 1000.0, settings.max_batch_rows
    )
    bodies = RequestModels(predictor)
    schema, definitions = bodies.json_schema()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    name = str(predictor.spec.get("name") or predictor.path.stem)
    app = FastAPI(title=f"modelspec: {name}", lifespan=lifespan)
    app.state.batcher = batcher

    @app.get("/health")
    def health() -> dict[str, str]:
        """Whether the server is up (the model was loaded at start)."""
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        """The model's name, inputs and outputs, final metrics and checksum."""
        return _metadata(name, predictor)

    refusals = {"model": Problem, "description": "The body cannot be used; `detail` says why"}
    answer = {"model": predict_response(predictor), "description": "One row per sample"}

    @app.post(
        "/predict",
        responses={200: answer, 400: refusals, 413: refusals, 415: refusals, 422: refusals},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": schema},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def predict(request: Request, probabilities: bool = False) -> JSONResponse:
        """Predictions (original class labels) for JSON records, input arrays or a CSV body."""
        try:
            body = await _body(request, settings.max_body_bytes)
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            inputs = bodies.parse(body, content_type.lower())
        except BodyError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        outputs = await batcher.predict(inputs)
        result: dict[str, Any] = {"predictions": _records(predictor.columns(outputs))}
        if probabilities:
            columns = predictor.columns(outputs, probabilities=True)
            result["probabilities"] = _records(columns)
        return JSONResponse(result)

    _add_schemas(app, definitions)
    return app


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to be larger than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        raise BodyError(f"the body has {declared} bytes; the limit is {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(f"the body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _records(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _metadata(name: str, predictor: Predictor) -> dict[str, Any]:
    schema = predictor.schema
    dtype = str(predictor.spec.get("dtype", "float32"))
    inputs = [
        {
            "name": s.name,
            "shape": [None, *s.shape],
            "dtype": s.dtype,
            "columns": schema.inputs.get(s.name) if schema is not None else None,
        }
        for s in predictor.signature.inputs
    ]
    outputs = [
        {
            "name": s.name,
            "shape": [None, *s.shape],
            "dtype": dtype,
            "loss": s.loss,
            "classes": schema.classes.get(s.name) if schema is not None else None,
        }
        for s in predictor.signature.outputs
    ]
    metrics = predictor.metadata.get("final_metrics", {})
    return {
        "name": name,
        "inputs": inputs,
        "outputs": outputs,
        "metrics": {k: float(np.float64(v)) for k, v in metrics.items()},
        "checksum": predictor.checksum,
    }


def _add_schemas(app: FastAPI, definitions: dict[str, Any]) -> None:
    """Put the request models' definitions where the /predict body's `$ref`s point."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = make()
            document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
