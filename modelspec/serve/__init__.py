"""`modelspec serve`: a trained model behind an HTTP API (FastAPI on uvicorn, the `serve` extra).

Nothing here is imported by the CLI until `serve` runs, so the rest of modelspec works without
the extra.
"""
