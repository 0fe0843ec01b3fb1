"""The TensorBoard callback, checked by reading its event files back with TensorBoard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from engine.build import from_spec
from engine.config.callbacks import CallbackConfig
from engine.layers.base import clear_session
from engine.spec_callbacks import from_config
from tests.artifacts import train_script

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

EPOCHS = 3
BATCH = 16  # 72 training rows after the validation split: 5 steps per epoch


def _read(folder: Path) -> Any:
    everything = {"scalars": 0, "histograms": 0}
    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance=everything)
    accumulator.Reload()
    return accumulator


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[float]]]:
    from engine.tensorboard import TensorBoard

    clear_session()
    log_dir = tmp_path_factory.mktemp("tb")
    model = from_spec(train_script.SPEC)
    x, y = train_script.data()
    callback = TensorBoard(log_dir, histogram_freq=1, update_freq=2, write_steps_per_second=True)
    history = model.fit(
        x, y, epochs=EPOCHS, batch_size=BATCH, validation_split=0.25, callbacks=[callback]
    )
    return log_dir, history.history


def test_epoch_scalars_match_the_history(logged: tuple[Path, dict[str, list[float]]]) -> None:
    log_dir, history = logged
    for run, prefix in (("train", ""), ("validation", "val_")):
        scalars = _read(log_dir / run).Scalars
        for name in ("loss", "accuracy"):
            events = scalars(f"epoch_{name}")
            assert [e.step for e in events] == list(range(EPOCHS))
            np.testing.assert_allclose([e.value for e in events], history[prefix + name], rtol=1e-6)


def test_batch_scalars_every_update_freq_batches(
    logged: tuple[Path, dict[str, list[float]]],
) -> None:
    steps = -(-72 // BATCH)
    events = _read(logged[0] / "train").Scalars("batch_loss")
    assert [e.step for e in events] == list(range(2, EPOCHS * steps + 1, 2))
    assert all(np.isfinite(e.value) for e in events)


def test_steps_per_second_per_epoch_and_per_logged_batch(
    logged: tuple[Path, dict[str, list[float]]],
) -> None:
    train = _read(logged[0] / "train")
    epochs = train.Scalars("epoch_steps_per_second")
    batches = train.Scalars("batch_steps_per_second")
    assert [e.step for e in epochs] == list(range(EPOCHS))
    assert [e.step for e in batches] == [e.step for e in train.Scalars("batch_loss")]
    assert all(np.isfinite(e.value) and e.value > 0 for e in [*epochs, *batches])
    validation = _read(logged[0] / "validation").Tags()["scalars"]
    assert "epoch_loss" in validation
    assert not any("steps_per_second" in tag for tag in validation)


@pytest.mark.parametrize(
    "argument",
    [{"write_images": True}, {"profile_batch": 5}, {"embeddings_freq": 1}],
)
def test_what_is_not_written_is_refused_by_name(argument: dict[str, Any]) -> None:
    from engine.tensorboard import TensorBoard

    name = next(iter(argument))
    with pytest.raises(ValueError, match=f"{name}=.*not supported"):
        TensorBoard("logs", **argument)


def test_weight_histograms_count_every_weight(
    logged: tuple[Path, dict[str, list[float]]],
) -> None:
    train = _read(logged[0] / "train")
    tags = train.Tags()["histograms"]
    assert {"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"} <= set(tags)
    kernel = train.Histograms("dense/kernel")
    assert [h.step for h in kernel] == list(range(EPOCHS))
    assert kernel[-1].histogram_value.num == 4 * 8


def test_graph_has_a_node_per_layer_call_and_the_spec_is_text(
    logged: tuple[Path, dict[str, list[float]]],
) -> None:
    train = _read(logged[0] / "train")
    nodes = {n.name: (n.op, list(n.input)) for n in train.Graph().node}
    assert nodes["dense"] == ("Dense", ["input_layer"])
    assert nodes["dropout"] == ("Dropout", ["dense"])
    assert nodes["dense_1"] == ("Dense", ["dropout"])
    text = train.Tensors("spec/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"type": "Dense"' in text and '"units": 8' in text


def test_spec_config_logs_inside_the_run_folder(tmp_path: Path) -> None:
    from engine.tensorboard import TensorBoard

    config = TypeAdapter(CallbackConfig).validate_python(
        {"type": "TensorBoard", "histogram_freq": 2, "update_freq": "batch"}
    )
    callback = from_config(config, run_dir=tmp_path)
    assert isinstance(callback, TensorBoard)
    assert callback.log_dir == tmp_path / "logs"
    assert (callback.histogram_freq, callback.update_freq, callback.write_graph) == (2, 1, True)


def test_without_tensorboardx_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.tensorboard import TensorBoard, WriterUnavailableError

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(WriterUnavailableError, match=r"modelspec\[tensorboard\]"):
        TensorBoard("logs")


def test_keras_namespace_finds_the_callback() -> None:
    import engine as tf
    from engine.tensorboard import TensorBoard

    assert tf.keras.callbacks.TensorBoard is TensorBoard
