"""Importing Keras models: predictions equal Keras's, the spec is a real spec, nothing runs."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.keras_io import archive
from engine.keras_io.errors import KerasArchiveError, KerasUnsupportedError
from engine.keras_io.importer import import_keras
from modelspec.check import check_spec
from tests.keras_io.helpers import FIXTURES, LEGACY, MODELS, TOLERANCE, max_difference

pytest.importorskip("h5py")


@pytest.mark.parametrize("name", MODELS)
def test_keras3_archive_predicts_as_keras(name: str) -> None:
    imported = import_keras(FIXTURES / f"{name}.keras")
    assert max_difference(imported.model, name) <= TOLERANCE


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_h5_predicts_as_keras(name: str) -> None:
    imported = import_keras(FIXTURES / f"{name}.h5")
    assert max_difference(imported.model, name) <= TOLERANCE


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_equals_the_archive(name: str) -> None:
    """Shared layers count once: the model holds exactly the weights Keras saved."""
    keras_file = archive.read(FIXTURES / f"{name}.keras")
    saved = sum(a.size for path, a in keras_file.arrays.items() if path.startswith("layers/"))
    assert import_keras(FIXTURES / f"{name}.keras").model.count_params() == saved


@pytest.mark.parametrize("name", MODELS)
def test_the_spec_lints_clean(name: str, tmp_path: Path) -> None:
    import yaml

    spec = import_keras(FIXTURES / f"{name}.keras").spec
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    report = check_spec(path)
    assert [d for d in report.diagnostics if d.severity == "error"] == []


def test_shared_layers_become_shares_entries() -> None:
    layers = import_keras(FIXTURES / "shared.keras").spec["model"]["layers"]
    shares = {e["name"]: e["shares"] for e in layers if "shares" in e}
    assert shares == {"embed_call_1": "embed", "encode_call_1": "encode"}
    assert next(e for e in layers if e["name"] == "diff")["inputs"] == ["encode", "encode_call_1"]


def test_masks_follow_the_embedding() -> None:
    """Keras records the mask as an op feeding `mask=`; the spec keeps mask_zero only."""
    layers = import_keras(FIXTURES / "embedding_lstm.keras").spec["model"]["layers"]
    assert [e["type"] for e in layers] == ["Input", "Embedding", "LSTM", "LSTM", "Dense"]
    assert layers[1]["mask_zero"] is True


def test_compile_settings_are_kept() -> None:
    spec = import_keras(FIXTURES / "multi_io.keras").spec
    assert spec["compile"]["loss"] == {
        "digit": "sparse_categorical_crossentropy",
        "big": "binary_crossentropy",
    }
    assert spec["compile"]["loss_weights"] == {"digit": 1.0, "big": 0.5}
    assert spec["compile"]["metrics"] == {"digit": ["accuracy"], "big": ["accuracy"]}
    mlp = import_keras(FIXTURES / "mlp.keras").spec["compile"]
    assert mlp["optimizer"]["type"] == "adam" and mlp["optimizer"]["learning_rate"] == 0.002


def test_objects_keep_their_arguments() -> None:
    dense = import_keras(FIXTURES / "mlp.keras").spec["model"]["layers"][1]
    assert dense["kernel_regularizer"] == {"type": "l2", "l2": 0.001}
    assert dense["kernel_constraint"] == {"type": "max_norm", "max_value": 3.0, "axis": 0}


@pytest.mark.parametrize(
    ("fixture", "words"),
    [
        ("unsafe_lambda.keras", ["'double'", "Lambda", "Python code", "expression"]),
        ("custom_layer.keras", ["'scale'", "Scale", "demo>Scale", "custom class"]),
    ],
)
def test_code_in_the_archive_is_refused(fixture: str, words: list[str]) -> None:
    with pytest.raises(KerasUnsupportedError) as info:
        import_keras(FIXTURES / fixture)
    for word in words:
        assert word in str(info.value)


def _rewrite(tmp_path: Path, edit: dict[str, bytes | None]) -> Path:
    """A copy of mlp.keras with members replaced (or removed when None)."""
    out = tmp_path / "edited.keras"
    with zipfile.ZipFile(FIXTURES / "mlp.keras") as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = edit.get(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)
    return out


def _config_with(change: dict[str, object]) -> bytes:
    with zipfile.ZipFile(FIXTURES / "mlp.keras") as src:
        config = json.loads(src.read("config.json"))
    config["config"]["layers"][1]["config"].update(change)
    return json.dumps(config).encode()


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"config.json": None}, "no config.json"),
        ({"config.json": b"{not json"}, "not valid JSON"),
        ({"model.weights.h5": b"garbage"}, "HDF5 weights cannot be read"),
        ({"config.json": _config_with({"units": 9})}, "holds weights of shapes"),
    ],
)
def test_damaged_archives_are_archive_errors(
    edit: dict[str, bytes | None], words: str, tmp_path: Path
) -> None:
    with pytest.raises(KerasArchiveError, match=words):
        import_keras(_rewrite(tmp_path, edit))


def test_unknown_arguments_are_named(tmp_path: Path) -> None:
    path = _rewrite(tmp_path, {"config.json": _config_with({"lora_rank": 4})})
    with pytest.raises(KerasUnsupportedError, match="lora_rank=4"):
        import_keras(path)


@pytest.mark.parametrize("data", [b"", b"hello world", (FIXTURES / "mlp.keras").read_bytes()[:999]])
def test_not_a_model_file(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "broken.keras"
    path.write_bytes(data)
    with pytest.raises(KerasArchiveError):
        import_keras(path)


def test_weights_only_h5_is_explained(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("dense/kernel", data=np.zeros((2, 2)))
    with pytest.raises(KerasArchiveError, match="weights only"):
        import_keras(path)


def test_reading_never_unmarshals_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lambda's config holds marshalled bytecode; reading it is refusing it, not loading it."""
    import marshal
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an import must not load code or pickles")

    for module, name in ((marshal, "loads"), (pickle, "loads"), (pickle, "load")):
        monkeypatch.setattr(module, name, refuse)
    with pytest.raises(KerasUnsupportedError):
        import_keras(FIXTURES / "unsafe_lambda.keras")


@pytest.mark.parametrize("name", ["multi_io", "sequences"])
def test_weight_groups_found_without_recorded_names(name: str, tmp_path: Path) -> None:
    """Older Keras 3 archives do not record layer names; groups follow Keras's naming."""
    import h5py

    with zipfile.ZipFile(FIXTURES / f"{name}.keras") as src:
        weights = io.BytesIO(src.read("model.weights.h5"))

    def forget(_: str, obj: h5py.HLObject) -> None:
        if "name" in obj.attrs:
            del obj.attrs["name"]

    with h5py.File(weights, "r+") as handle:
        handle.visititems(forget)
    out = tmp_path / "unnamed.keras"
    with zipfile.ZipFile(FIXTURES / f"{name}.keras") as src, zipfile.ZipFile(out, "w") as dst:
        for member in src.namelist():
            data = weights.getvalue() if member == "model.weights.h5" else src.read(member)
            dst.writestr(member, data)
    assert archive.read(out).group_names == {}  # nothing recorded: named from the config
    assert max_difference(import_keras(out).model, name) <= TOLERANCE


def _mutations(config: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every key path inside a JSON tree."""
    paths = [path] if path else []
    if isinstance(config, dict):
        for key, value in config.items():
            paths += _mutations(value, (*path, key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            paths += _mutations(value, (*path, index))
    return paths


def _mutated(config: dict[str, object], path: tuple[object, ...], value: object) -> bytes:
    tree = json.loads(json.dumps(config))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(tree).encode()


@pytest.mark.parametrize("name", ["mlp", "shared"])
def test_any_damaged_config_is_an_error_not_a_crash(name: str, tmp_path: Path) -> None:
    """Each value of config.json replaced by odd JSON: a KerasIOError or a working import."""
    from engine.keras_io.errors import KerasIOError

    with zipfile.ZipFile(FIXTURES / f"{name}.keras") as src:
        members = {m: src.read(m) for m in src.namelist()}
    config = json.loads(members["config.json"])
    paths = _mutations(config)
    odd_values: list[object] = [None, 7, "x", [], {}, [[1]], -1.5, True]
    for index, path in enumerate(paths[:: max(1, len(paths) // 150)]):
        value = odd_values[index % len(odd_values)]
        out = tmp_path / f"m{index}.keras"
        with zipfile.ZipFile(out, "w") as dst:
            for member, data in members.items():
                dst.writestr(
                    member, _mutated(config, path, value) if member == "config.json" else data
                )
        with contextlib.suppress(KerasIOError):
            import_keras(out)


def test_registered_objects_inside_a_layer_are_refused(tmp_path: Path) -> None:
    custom = {"module": "mypkg", "class_name": "MyInit", "registered_name": "mypkg>MyInit"}
    path = _rewrite(tmp_path, {"config.json": _config_with({"kernel_initializer": custom})})
    with pytest.raises(KerasUnsupportedError) as info:
        import_keras(path)
    for words in ("'dense' (Dense)", "kernel_initializer", "MyInit", "custom object"):
        assert words in str(info.value)


def test_sequential_built_without_an_input_layer(tmp_path: Path) -> None:
    """Keras 3 keeps `build_input_shape` when a Sequential was built by calling it."""
    with zipfile.ZipFile(FIXTURES / "mlp.keras") as src:
        config = json.loads(src.read("config.json"))
    config["config"]["layers"].pop(0)
    config["config"]["build_input_shape"] = [None, 4]
    imported = import_keras(_rewrite(tmp_path, {"config.json": json.dumps(config).encode()}))
    assert imported.spec["model"]["layers"][0] == {
        "type": "Input",
        "name": "input_layer",
        "shape": [4],
    }
    assert max_difference(imported.model, "mlp") <= TOLERANCE


def test_call_arguments_are_kept_in_the_entry() -> None:
    """Keras passes use_causal_mask when calling Attention; the spec writes it in the entry."""
    layers = import_keras(FIXTURES / "attention.keras").spec["model"]["layers"]
    by_name = {e["name"]: e for e in layers}
    assert by_name["causal"]["use_causal_mask"] is True
    assert "use_causal_mask" not in by_name["dot"]
