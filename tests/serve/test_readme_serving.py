"""The README's Serving example stays true: its curl bodies are accepted and answered as shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx2")

from fastapi.testclient import TestClient  # noqa: E402

from modelspec.predictor import Predictor  # noqa: E402
from modelspec.serve.app import ServeSettings, create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECTION = (ROOT / "README.md").read_text().split("## Serving", 1)[1].split("\n## ", 1)[0]


def test_the_curl_examples_are_answered_as_the_readme_shows(iris_run: Path) -> None:
    block = re.search(r"```bash\n(.*?)```", SECTION, re.S)
    assert block
    commands = block.group(1)
    assert "modelspec serve runs/iris_mlp" in commands and "127.0.0.1:8000" in commands
    record = json.loads(_found(r"-d '(\{.*?\})'", commands))
    shown = json.loads(_found(r"(?m)^# (\{.*\})$", commands.replace("\n#   ", "")))
    csv_file = _found(r"--data-binary @(\S+)", commands)
    with TestClient(create_app(Predictor.load(iris_run), ServeSettings(str(iris_run)))) as client:
        answer = client.post("/predict?probabilities=true", json=record).json()
        table = client.post(
            "/predict", content=(ROOT / csv_file).read_bytes(), headers={"content-type": "text/csv"}
        )
    assert set(answer) == set(shown)
    assert [set(r) for r in answer["probabilities"]] == [set(r) for r in shown["probabilities"]]
    assert answer["predictions"] == shown["predictions"]
    assert table.status_code == 200 and len(table.json()["predictions"]) == 30


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    return match.group(1)
