"""Per-output losses as Keras 3 logs them: each output's loss unweighted, only the total weighted.

For outputs `a` and `b` with `loss_weights={"a": 1, "b": 0.1}` and mean squared error, Keras 3
logs `a_loss = mean((y_a - p_a)**2)`, `b_loss = mean((y_b - p_b)**2)` and
`loss = 1 * a_loss + 0.1 * b_loss`, in evaluate, History and therefore in the CLI's tables and
history.csv. The expected numbers are that formula on the model's own predictions; Keras
3.15.1 gives the same for the same model (scripts/keras_custom_layers.py).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import engine as en
from engine.build import from_spec
from engine.layers.base import clear_session
from modelspec.cli import app

WEIGHTS = {"a": 1.0, "b": 0.1}


def hand_losses(model: Any, x: np.ndarray, ya: np.ndarray, yb: np.ndarray) -> dict[str, float]:
    pa, pb = (p.astype(np.float64) for p in model.predict(x))
    a_loss = float(np.mean((ya - pa) ** 2))
    b_loss = float(np.mean((yb - pb) ** 2))
    total = WEIGHTS["a"] * a_loss + WEIGHTS["b"] * b_loss
    return {"loss": total, "a_loss": a_loss, "b_loss": b_loss}


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return (
        x,
        5 * rng.normal(size=(n, 1)).astype(np.float32),
        rng.normal(size=(n, 2)).astype(np.float32),
    )


def two_outputs() -> Any:
    clear_session()
    inputs = en.keras.Input((3,))
    hidden = en.keras.layers.Dense(4, activation="tanh")(inputs)
    a = en.keras.layers.Dense(1, name="a")(hidden)
    b = en.keras.layers.Dense(2, name="b")(hidden)
    model = en.keras.Model(inputs, [a, b])
    model.compile(optimizer="adam", loss="mse", loss_weights=WEIGHTS)
    return model


def test_evaluate_and_history_log_unweighted_output_losses() -> None:
    model = two_outputs()
    x, ya, yb = data(24, 0)
    before = hand_losses(model, x, ya, yb)
    # One batch per epoch: History's epoch-1 numbers are the losses before the first update.
    history = model.fit(x, {"a": ya, "b": yb}, epochs=2, batch_size=24, verbose=0).history
    assert list(history) == ["loss", "a_loss", "b_loss"]
    for key, value in before.items():
        assert history[key][0] == pytest.approx(value, rel=1e-5)
    after = hand_losses(model, x, ya, yb)
    logs = model.evaluate(x, [ya, yb], return_dict=True, verbose=0)
    assert logs == pytest.approx(after, rel=1e-5)
    assert model.evaluate(x, [ya, yb], verbose=0) == pytest.approx(
        [after["loss"], after["a_loss"], after["b_loss"]], rel=1e-5
    )


SPEC = {
    "name": "two",
    "seed": 3,
    "model": {
        "type": "functional",
        "inputs": [{"name": "x", "shape": [3]}],
        "layers": [
            {"name": "hidden", "type": "Dense", "units": 4, "activation": "tanh"},
            {"name": "a", "type": "Dense", "units": 1, "inputs": "hidden"},
            {"name": "b", "type": "Dense", "units": 2, "inputs": "hidden"},
        ],
        "outputs": ["a", "b"],
    },
    "compile": {"optimizer": "adam", "loss": "mse", "loss_weights": WEIGHTS},
    "data": {
        "train": {"path": "train.npz", "x": {"x": "x"}, "y": {"a": "a", "b": "b"}},
        "test": {"path": "test.npz", "x": {"x": "x"}, "y": {"a": "a", "b": "b"}},
    },
    "fit": {"epochs": 2, "batch_size": 20},
}


def test_cli_tables_and_history_csv_log_unweighted_output_losses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, (x, ya, yb) in {"train": data(20, 1), "test": data(8, 2)}.items():
        np.savez(f"{name}.npz", x=x, a=ya, b=yb)
    Path("two.yaml").write_text(yaml.safe_dump(SPEC))
    x, ya, yb = data(20, 1)
    before = hand_losses(from_spec("two.yaml"), x, ya, yb)  # the seed fixes the first weights

    result = CliRunner().invoke(app, ["train", "two.yaml"])
    assert result.exit_code == 0, result.output
    with open("runs/two/history.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    for key, value in before.items():
        assert float(first[key]) == pytest.approx(value, rel=1e-5)

    trained = en.load_model("runs/two")
    after = hand_losses(trained, *data(8, 2))
    result = CliRunner().invoke(app, ["evaluate", "two.yaml", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == pytest.approx(after, rel=1e-5)
    table = CliRunner().invoke(app, ["evaluate", "two.yaml"]).output
    for key, value in after.items():
        assert re.search(rf"\b{key} +│ +{value:.4f} │", table), table
