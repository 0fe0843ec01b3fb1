"""Real models: exact save/load round trips for each example spec, exact resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import saving
from engine.build import SpecError, from_spec
from engine.callbacks import CheckpointCallback
from engine.loading import load_model
from tests.artifacts import train_script

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def _inputs(model: Any) -> Any:
    rng = np.random.default_rng(1)
    xs = [
        rng.standard_normal((6, *t.shape[1:])).astype(t.dtype)
        if "float" in t.dtype
        else rng.integers(0, 3, (6, *t.shape[1:])).astype(t.dtype)
        for t in model.inputs
    ]
    return xs if len(xs) > 1 else xs[0]


def _outputs(value: Any) -> list[np.ndarray]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_example_round_trip_predicts_exactly(tmp_path: Path, spec: Path) -> None:
    try:
        model = from_spec(spec)
    except SpecError as exc:
        pytest.skip(f"the engine cannot build this spec yet: {exc}")
    x = _inputs(model)
    saving.save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    for a, b in zip(_outputs(model.predict(x)), _outputs(loaded.predict(x)), strict=True):
        np.testing.assert_array_equal(a, b)
    for w, v in zip(model.weights, loaded.weights, strict=True):
        assert w.name == v.name
        np.testing.assert_array_equal(w.numpy(), v.numpy())


def _final(run_dir: Path) -> saving.Artifact:
    return saving.read_artifact(run_dir)


def _assert_same_run(a: saving.Artifact, b: saving.Artifact) -> None:
    assert a.weights.keys() == b.weights.keys()
    for name in a.weights:
        assert a.weights[name].tobytes() == b.weights[name].tobytes(), name
    assert a.history == b.history
    assert len(a.history["loss"]) == train_script.EPOCHS


def test_resume_in_process_matches_uninterrupted(tmp_path: Path) -> None:
    train_script.train(str(tmp_path / "full"), resume=False, sleep=0.0)
    partial = tmp_path / "partial"
    model = from_spec(train_script.SPEC)
    x, y = train_script.data()
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[CheckpointCallback(partial)],
    )
    train_script.train(str(partial), resume=True, sleep=0.0)
    _assert_same_run(_final(tmp_path / "full"), _final(partial))
    state = _final(partial).training_state
    assert state is not None and state["epoch"] == train_script.EPOCHS


@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_sigkill_mid_training_then_resume_gives_the_same_weights(tmp_path: Path) -> None:
    train_script.train(str(tmp_path / "full"), resume=False, sleep=0.0)
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "tests.artifacts.train_script", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*command, "fresh", "0.03"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(saving.list_checkpoints(run_dir)) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "training made no progress"
            time.sleep(0.01)
        time.sleep(0.05)  # a few steps into the next epoch
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run_dir / saving.MODEL_FILE).exists()
    _, checkpoint = saving.latest_checkpoint(run_dir)
    assert 0 < checkpoint.training_state["epoch"] < train_script.EPOCHS  # type: ignore[index]
    subprocess.run([*command, "resume", "0"], cwd=ROOT, env=env, check=True)
    _assert_same_run(_final(tmp_path / "full"), _final(run_dir))
