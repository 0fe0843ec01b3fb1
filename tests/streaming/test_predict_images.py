"""`modelspec predict` on images decodes them as training did: the image options and the class
names' order are saved in the model's data schema and applied to a folder (any layout) or a
single file of new images."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from engine.config.data import DataSource
from engine.data import InputSpec, ModelSignature, OutputSpec
from engine.loading import load_model
from engine.streaming import open_stream
from modelspec.cli import app
from tests.streaming.files import write_images

pytest.importorskip("PIL")

SOURCE: dict[str, Any] = {
    "path": "images",
    "image_size": [6, 5],
    "color_mode": "grayscale",
    "interpolation": "nearest",
    "crop_to_aspect_ratio": True,
    "class_names": ["dog", "cat"],
}
SPEC: dict[str, Any] = {
    "name": "pictures",
    "seed": 3,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [6, 5, 1]},
            {"type": "Rescaling", "scale": 0.00392156862745098},
            {"type": "Flatten"},
            {"type": "Dense", "units": 2, "activation": "softmax", "name": "label"},
        ],
    },
    "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
    "fit": {"epochs": 2, "batch_size": 4},
    "data": {"train": SOURCE},
}


def _rows(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_predict_on_new_images_uses_the_training_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_images(tmp_path)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SPEC))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "s.yaml", "--out", "run"])
    assert trained.exit_code == 0, trained.output

    # new images in a layout of their own: no class subfolders, one nested
    new = tmp_path / "new"
    (new / "more").mkdir(parents=True)
    shutil.copy(root / "cat" / "0.png", new / "a.png")
    shutil.copy(root / "dog" / "1.png", new / "more" / "b.png")
    predicted = runner.invoke(app, ["predict", "run", "--input", "new", "--probabilities"])
    assert predicted.exit_code == 0, predicted.output
    rows = _rows(predicted.output)
    assert list(rows[0]) == ["file", "y_dog", "y_cat"]
    assert [Path(r["file"]).name for r in rows] == ["a.png", "b.png"]

    # the oracle: the trained model on the arrays the training stream decoded for those files
    signature = ModelSignature(
        (InputSpec("input", (6, 5, 1)),),
        (OutputSpec("label", (2,), "sparse_categorical_crossentropy"),),
    )
    stream = open_stream(DataSource(**SOURCE), tmp_path, signature)
    files = [str(f) for f in stream.source.files]  # type: ignore[attr-defined]
    x = stream.to_dataset().x["input"]
    assert x.shape[1:] == (6, 5, 1)
    picked = x[[files.index(str(root / "cat" / "0.png")), files.index(str(root / "dog" / "1.png"))]]
    expected = load_model(tmp_path / "run").predict(picked, verbose=0)
    got = np.array([[float(r["y_dog"]), float(r["y_cat"])] for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-6)

    written = runner.invoke(app, ["predict", "run", "--input", "new", "--output", "p.csv"])
    assert written.exit_code == 0, written.output
    assert _rows((tmp_path / "p.csv").read_text())[1]["file"] == str(Path("new/more/b.png"))

    labels = runner.invoke(app, ["predict", "run", "--input", "new/a.png"])
    assert labels.exit_code == 0, labels.output
    (one,) = _rows(labels.output)
    assert one["y"] == ["dog", "cat"][int(np.argmax(expected[0]))]


def test_an_unreadable_new_image_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_images(tmp_path)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SPEC))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["train", "s.yaml", "--out", "run"]).exit_code == 0
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "broken.png").write_bytes(b"not a png")
    result = runner.invoke(app, ["predict", "run", "--input", "new"])
    assert result.exit_code == 1
    assert "broken.png: not a readable image" in result.output
    assert "Traceback" not in result.output
