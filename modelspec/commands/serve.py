"""The `serve` command: a trained model behind an HTTP API (needs the `serve` extra).

FastAPI and uvicorn are imported only when the command runs, so `modelspec --help` stays fast
and works without them. The model is loaded before the server starts: a missing or damaged
model is the same one line and exit code as `modelspec predict` gives, and no server starts.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from modelspec.commands.run import CommandError, _user_errors

SERVE_EXTRA = ("fastapi", "uvicorn")


class LogLevel(str, Enum):
    """uvicorn's log levels; below info the access log is off."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def serve(
    model_path: Annotated[
        Path, typer.Argument(metavar="RUN_OR_MODEL", help="A run folder or a model.msz file.")
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes, each with the model.")
    ] = 1,
    max_delay_ms: Annotated[
        float,
        typer.Option(
            "--max-delay-ms", min=0.0, help="Wait this long for more requests to join a pass."
        ),
    ] = 2.0,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="Samples that close a pass (1: batching off).")
    ] = 256,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Larger request bodies get 413.")
    ] = 1 << 20,
    log_level: Annotated[
        LogLevel, typer.Option("--log-level", help="uvicorn's log level (warning: no access log).")
    ] = LogLevel.info,
) -> None:
    """Serve a trained model: POST /predict, GET /health, GET /metadata, /docs (OpenAPI)."""
    err = Console(stderr=True)
    with _user_errors(err):
        _require_extra()
        from modelspec.predictor import Predictor
        from modelspec.serve.app import ENV_SETTINGS, ServeSettings, create_app

        predictor = Predictor.load(model_path)
        settings = ServeSettings(str(model_path.resolve()), max_delay_ms, max_batch, max_body_bytes)
    import uvicorn

    if workers == 1:
        uvicorn.run(
            create_app(predictor, settings), host=host, port=port, log_level=log_level.value
        )
        return
    os.environ[ENV_SETTINGS] = settings.to_env()
    uvicorn.run(
        "modelspec.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.value,
    )


def _require_extra() -> None:
    from modelspec.extras import MissingExtraError, require

    try:
        for module in SERVE_EXTRA:
            require(module, "serve", "`modelspec serve`")
    except MissingExtraError as exc:
        raise CommandError(str(exc), 2) from None


def register(app: typer.Typer) -> None:
    """Add `serve` to the modelspec app."""
    app.command("serve")(serve)
