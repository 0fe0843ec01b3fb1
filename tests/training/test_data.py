"""engine.data: reading CSV, NPZ and NPY into a model's inputs and outputs; every mismatch named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine.config.data import DataConfig, DataSource
from engine.data import (
    DataError,
    DataSchema,
    InputSpec,
    ModelSignature,
    OutputSpec,
    UnreadableDataError,
    load_dataset,
    prediction_columns,
    write_predictions,
)

IRIS_CSV = """a,b,c,d,species
5.1,3.5,1.4,0.2,setosa
7.0,3.2,4.7,1.4,versicolor
6.3,3.3,6.0,2.5,virginica
4.9,3.0,1.4,0.2,setosa
"""

CLASSIFIER = ModelSignature(
    (InputSpec("input_layer", (4,)),),
    (OutputSpec("dense", (3,), "sparse_categorical_crossentropy"),),
)
BINARY = ModelSignature(
    (InputSpec("input_layer", (4,)),), (OutputSpec("out", (1,), "binary_crossentropy"),)
)
REGRESSION = ModelSignature((InputSpec("input_layer", (4,)),), (OutputSpec("out", (1,), "mse"),))
TWO_BY_TWO = ModelSignature(
    (InputSpec("image", (2, 2, 1)), InputSpec("meta", (3,))),
    (
        OutputSpec("digit", (4,), "sparse_categorical_crossentropy"),
        OutputSpec("big", (1,), "binary_crossentropy"),
    ),
)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def two_by_two_arrays(n: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "img": rng.random((n, 2, 2, 1)).astype(np.float32),
        "side": rng.random((n, 3)).astype(np.float32),
        "digit": np.arange(n) % 4,
        "big": (np.arange(n) % 2).astype(np.float32).reshape(-1, 1),
    }


TWO_BY_TWO_SOURCE = {"x": {"image": "img", "meta": "side"}, "y": {"digit": "digit", "big": "big"}}


# --- loading ---------------------------------------------------------------------------------


def test_csv_string_labels_become_sorted_class_ids(tmp_path: Path) -> None:
    write(tmp_path, "iris.csv", IRIS_CSV)
    data, schema = load_dataset(DataSource(path="iris.csv", target="species"), tmp_path, CLASSIFIER)
    assert data.x["input_layer"].dtype == np.float32
    assert data.x["input_layer"].shape == (4, 4)
    np.testing.assert_array_equal(data.y["dense"], [0, 1, 2, 0])
    assert schema.classes == {"dense": ["setosa", "versicolor", "virginica"]}
    assert schema.inputs == {"input_layer": ["a", "b", "c", "d"]}
    assert schema.outputs == {"dense": ["species"]}


def test_features_are_read_in_file_order_and_others_ignored(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", "z,b,a,y,q\n1,2,3,0,9\n4,5,6,1,9\n")
    signature = ModelSignature((InputSpec("in", (2,)),), (OutputSpec("o", (1,), "mse"),))
    source = DataSource(path="t.csv", target="y", features=["a", "b"])
    data, schema = load_dataset(source, tmp_path, signature)
    np.testing.assert_array_equal(data.x["in"], [[2, 3], [5, 6]])
    assert schema.inputs == {"in": ["b", "a"]}


def test_schema_maps_test_labels_like_training_and_reads_columns_by_name(tmp_path: Path) -> None:
    write(tmp_path, "train.csv", IRIS_CSV)
    # A new file with its columns shuffled, an extra column, and only some of the classes.
    write(tmp_path, "new.csv", "extra,species,d,c,b,a\nx,virginica,2.5,6.0,3.3,6.3\n")
    _, schema = load_dataset(DataSource(path="train.csv", target="species"), tmp_path, CLASSIFIER)
    data, _ = load_dataset(DataSource(path="new.csv"), tmp_path, CLASSIFIER, schema)
    np.testing.assert_allclose(data.x["input_layer"], [[6.3, 3.3, 6.0, 2.5]], rtol=1e-6)
    np.testing.assert_array_equal(data.y["dense"], [2])


def test_predict_input_needs_no_target(tmp_path: Path) -> None:
    write(tmp_path, "train.csv", IRIS_CSV)
    write(tmp_path, "new.csv", "d,c,b,a\n0.2,1.4,3.5,5.1\n")
    _, schema = load_dataset(DataSource(path="train.csv", target="species"), tmp_path, CLASSIFIER)
    data, _ = load_dataset(
        DataSource(path="new.csv"), tmp_path, CLASSIFIER, schema, need_targets=False
    )
    assert data.y == {}
    np.testing.assert_allclose(data.x["input_layer"], [[5.1, 3.5, 1.4, 0.2]], rtol=1e-6)


def test_npz_several_inputs_and_outputs_by_name(tmp_path: Path) -> None:
    arrays = two_by_two_arrays()
    np.savez(tmp_path / "d.npz", **arrays)
    data, schema = load_dataset(DataSource(path="d.npz", **TWO_BY_TWO_SOURCE), tmp_path, TWO_BY_TWO)
    np.testing.assert_array_equal(data.x["image"], arrays["img"])
    np.testing.assert_array_equal(data.y["digit"], arrays["digit"])
    assert schema.format == "npz" and schema.inputs == {"image": ["img"], "meta": ["side"]}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_members_are_memory_mapped_when_stored(tmp_path: Path, save: Any) -> None:
    arrays = two_by_two_arrays()
    save(tmp_path / "d.npz", **arrays)
    data, _ = load_dataset(DataSource(path="d.npz", **TWO_BY_TWO_SOURCE), tmp_path, TWO_BY_TWO)
    assert isinstance(data.x["image"], np.memmap) == (save is np.savez)
    np.testing.assert_array_equal(data.x["meta"], arrays["side"])


def test_npy_is_memory_mapped_and_takes_labels_from_a_second_file(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([0.5, 1.5, 2.5]))
    data, _ = load_dataset(DataSource(path="x.npy", y="y.npy"), tmp_path, REGRESSION)
    assert isinstance(data.x["input_layer"], np.memmap)
    np.testing.assert_array_equal(data.x["input_layer"], x)
    np.testing.assert_array_equal(data.y["out"], [[0.5], [1.5], [2.5]])


def test_categorical_crossentropy_gets_one_hot_rows(tmp_path: Path) -> None:
    write(tmp_path, "iris.csv", IRIS_CSV)
    signature = ModelSignature(
        CLASSIFIER.inputs, (OutputSpec("dense", (3,), "categorical_crossentropy"),)
    )
    data, _ = load_dataset(DataSource(path="iris.csv", target="species"), tmp_path, signature)
    np.testing.assert_array_equal(data.y["dense"], np.eye(3)[[0, 1, 2, 0]])


def test_int_inputs_keep_integer_token_ids(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", "t0,t1,y\n1,2,0\n3,4,1\n")
    signature = ModelSignature(
        (InputSpec("tokens", (2,), "int32"),), (OutputSpec("o", (1,), "binary_crossentropy"),)
    )
    data, _ = load_dataset(DataSource(path="t.csv", target="y"), tmp_path, signature)
    assert data.x["tokens"].dtype == np.int32


# --- every mismatch, named ---------------------------------------------------------------------

NPZ_CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("missing key", {}, {"x": {"image": "imgs", "meta": "side"}}, ["'imgs'", "did you mean 'img'"]),
    (
        "wrong rank",
        {"img": np.zeros((5, 4), np.float32)},
        {},
        ["'img'", "rank 2", "needs rank 4", "'image'"],
    ),
    (
        "wrong width",
        {"side": np.zeros((5, 2), np.float32)},
        {},
        ["'side'", "width 2 on axis 1", "'meta'", "needs 3"],
    ),
    (
        "NaN input",
        {"side": np.where(np.eye(5, 3) > 0, np.nan, 0).astype(np.float32)},
        {},
        ["'side'", "sample 0", "NaN"],
    ),
    (
        "label out of range",
        {"digit": np.array([0, 1, 2, 3, 4])},
        {},
        ["'digit'", "class id 4", "0..3"],
    ),
    ("negative label", {"digit": np.array([0, -1, 2, 3, 1])}, {}, ["class id -1"]),
    (
        "binary label out of range",
        {"big": np.full((5, 1), 2.0, np.float32)},
        {},
        ["'big'", "label 2", "between 0 and 1"],
    ),
    ("fractional class id", {"digit": np.array([0.5, 1, 2, 3, 1])}, {}, ["non-integer"]),
    (
        "sample counts",
        {"big": np.zeros((4, 1), np.float32)},
        {},
        ["disagree", "big: 4", "image: 5"],
    ),
    ("unknown output", {}, {"y": {"digit": "digit", "bigg": "big"}}, ["'bigg'", "outputs are"]),
    ("missing output", {}, {"y": {"digit": "digit"}}, ["no data given", "'big'"]),
    ("single name for two inputs", {}, {"x": "img"}, ["2 inputs", "map keyed"]),
]


@pytest.mark.parametrize(
    ("change", "source", "words"),
    [case[1:] for case in NPZ_CASES],
    ids=[case[0] for case in NPZ_CASES],
)
def test_npz_mismatches_are_named(
    tmp_path: Path, change: dict[str, Any], source: dict[str, Any], words: list[str]
) -> None:
    np.savez(tmp_path / "d.npz", **{**two_by_two_arrays(), **change})
    with pytest.raises(DataError) as info:
        load_dataset(
            DataSource(path="d.npz", **{**TWO_BY_TWO_SOURCE, **source}), tmp_path, TWO_BY_TWO
        )
    message = str(info.value)
    assert "d.npz" in message
    for word in words:
        assert word in message


CSV_CASES: list[tuple[str, str, dict[str, Any], ModelSignature, list[str]]] = [
    ("missing target", IRIS_CSV, {"target": "specis"}, CLASSIFIER, ["'specis'", "'species'"]),
    (
        "missing feature",
        IRIS_CSV,
        {"target": "species", "features": ["a", "b", "c", "e"]},
        CLASSIFIER,
        ["no column 'e'"],
    ),
    (
        "too many columns",
        "a,b,c,d,e,y\n1,2,3,4,5,0\n",
        {"target": "y"},
        CLASSIFIER,
        ["5 feature columns", "width 5", "needs 4", "'input_layer'"],
    ),
    (
        "image input from rows",
        IRIS_CSV,
        {"target": "species"},
        ModelSignature((InputSpec("img", (2, 2, 1)),), CLASSIFIER.outputs),
        ["rank 2", "needs rank 4", "Reshape"],
    ),
    (
        "empty cell",
        "a,b,c,d,y\n1,2,3,4,0\n1,,3,4,1\n",
        {"target": "y"},
        CLASSIFIER,
        [":3:", "column 'b'", "NaN"],
    ),
    (
        "text feature",
        "a,b,c,d,y\n1,2,3,x,0\n",
        {"target": "y"},
        CLASSIFIER,
        ["column 'd'", "'x'", "numbers"],
    ),
    ("label out of range", "a,b,c,d,y\n1,2,3,4,3\n", {"target": "y"}, CLASSIFIER, ["class id 3"]),
    ("binary label", "a,b,c,d,y\n1,2,3,4,-1\n", {"target": "y"}, BINARY, ["label -1"]),
    (
        "three string classes for one sigmoid",
        IRIS_CSV,
        {"target": "species"},
        BINARY,
        ["label 2", "between 0 and 1"],
    ),
    (
        "missing label",
        "a,b,c,d,y\n1,2,3,4,\n",
        {"target": "y"},
        REGRESSION,
        ["missing or NaN label"],
    ),
    (
        "ragged row",
        "a,b,c,d,y\n1,2,3,4\n",
        {"target": "y"},
        REGRESSION,
        [":2:", "4 cells", "5 columns"],
    ),
    (
        "duplicate header",
        "a,a,c,d,y\n1,2,3,4,5\n",
        {"target": "y"},
        REGRESSION,
        ["duplicate", "'a'"],
    ),
    ("no rows", "a,b,c,d,y\n", {"target": "y"}, REGRESSION, ["no samples"]),
    ("no target given", IRIS_CSV, {}, CLASSIFIER, ["no labels", "`target`"]),
]


@pytest.mark.parametrize(
    ("content", "source", "signature", "words"),
    [case[1:] for case in CSV_CASES],
    ids=[case[0] for case in CSV_CASES],
)
def test_csv_mismatches_are_named(
    tmp_path: Path,
    content: str,
    source: dict[str, Any],
    signature: ModelSignature,
    words: list[str],
) -> None:
    write(tmp_path, "t.csv", content)
    with pytest.raises(DataError) as info:
        load_dataset(DataSource(path="t.csv", **source), tmp_path, signature)
    message = str(info.value)
    assert "t.csv" in message
    for word in words:
        assert word in message


def test_unseen_test_label_is_named(tmp_path: Path) -> None:
    write(tmp_path, "train.csv", IRIS_CSV)
    write(tmp_path, "test.csv", "a,b,c,d,species\n1,2,3,4,setosaa\n")
    _, schema = load_dataset(DataSource(path="train.csv", target="species"), tmp_path, CLASSIFIER)
    with pytest.raises(DataError, match="'setosaa'.*not trained on"):
        load_dataset(DataSource(path="test.csv", target="species"), tmp_path, CLASSIFIER, schema)


@pytest.mark.parametrize(
    ("name", "content"),
    [("missing.csv", None), ("data.parquet", b"x"), ("bad.npz", b"not a zip"), ("bad.npy", b"xx")],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes | None) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=name):
        load_dataset(DataSource(path=name, target="y"), tmp_path, REGRESSION)


def test_missing_and_unknown_files_are_unreadable_not_bad_data(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDataError):
        load_dataset(DataSource(path="nope.csv", target="y"), tmp_path, REGRESSION)


def test_pickled_objects_are_refused_never_loaded(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}], dtype=object))
    for name in ("o.npy", "o.npz"):
        with pytest.raises(DataError, match=name):
            load_dataset(DataSource(path=name), tmp_path, REGRESSION, need_targets=False)


# --- the data section --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section",
    [
        {"train": {"path": "a.csv", "target": "y", "y": "z"}},
        {"train": {"path": "a.csv", "features": ["a"], "x": ["a"]}},
        {"train": {"path": "a.csv", "colour": "red"}},
        {"training": {"path": "a.csv"}},
        {"train": {"target": "y"}},
    ],
)
def test_data_config_rejects_bad_sections(section: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DataConfig.model_validate(section)


def test_data_config_accepts_spec_forms() -> None:
    config = DataConfig.model_validate(
        {
            "train": {"path": "d.csv", "target": "label", "features": ["a", "b"]},
            "validation": {"path": "v.npz", "x": {"image": "x_img", "meta": "x_meta"}, "y": "y"},
            "test": {"path": "t.csv", "x": {"image": ["p0", "p1"]}, "y": {"digit": ["d"]}},
        }
    )
    assert config.validation is not None and config.validation.y == "y"


# --- predictions -------------------------------------------------------------------------------

SCHEMA = DataSchema(
    format="csv",
    inputs={"input_layer": ["a", "b", "c", "d"]},
    outputs={"dense": ["species"]},
    classes={"dense": ["setosa", "versicolor", "virginica"]},
)
PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)


@pytest.mark.parametrize(
    ("signature", "outputs", "schema", "probabilities", "expected"),
    [
        (CLASSIFIER, {"dense": PROBS}, SCHEMA, False, {"species": ["setosa", "virginica"]}),
        (
            CLASSIFIER,
            {"dense": PROBS},
            SCHEMA,
            True,
            {
                "species_setosa": [0.7, 0.1],
                "species_versicolor": [0.2, 0.1],
                "species_virginica": [0.1, 0.8],
            },
        ),
        (CLASSIFIER, {"dense": PROBS}, None, False, {"dense": [0, 2]}),
        (
            BINARY,
            {"out": np.array([[0.2], [0.9]])},
            DataSchema(
                format="csv",
                inputs={},
                outputs={"out": ["dx"]},
                classes={"out": ["benign", "malignant"]},
            ),
            False,
            {"dx": ["benign", "malignant"]},
        ),
        (
            ModelSignature(BINARY.inputs, (OutputSpec("out", (1,), "binary_crossentropy", True),)),
            {"out": np.array([[-0.2], [0.1]])},
            None,
            False,
            {"out": [0, 1]},
        ),
        (REGRESSION, {"out": np.array([[1.5], [2.5]])}, None, False, {"out": [1.5, 2.5]}),
    ],
)
def test_prediction_columns(
    signature: ModelSignature,
    outputs: dict[str, np.ndarray],
    schema: DataSchema | None,
    probabilities: bool,
    expected: dict[str, list[Any]],
) -> None:
    columns = prediction_columns(outputs, signature, schema, probabilities=probabilities)
    assert list(columns) == list(expected)
    for name, values in expected.items():
        assert columns[name] == pytest.approx(values) if probabilities else columns[name] == values


def test_write_predictions_by_suffix(tmp_path: Path) -> None:
    write_predictions(tmp_path / "p.csv", {"dense": PROBS}, CLASSIFIER, SCHEMA)
    assert (tmp_path / "p.csv").read_text() == "species\nsetosa\nvirginica\n"
    write_predictions(tmp_path / "p.npy", {"dense": PROBS}, CLASSIFIER, SCHEMA)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), PROBS)
    two = {"digit": np.zeros((2, 4)), "big": np.ones((2, 1))}
    write_predictions(tmp_path / "p.npz", two, TWO_BY_TWO, None)
    with np.load(tmp_path / "p.npz") as saved:
        assert sorted(saved.files) == ["big", "digit"]
    with pytest.raises(DataError, match="npz"):
        write_predictions(tmp_path / "q.npy", two, TWO_BY_TWO, None)
    with pytest.raises(DataError, match="unknown output format"):
        write_predictions(tmp_path / "p.txt", {"dense": PROBS}, CLASSIFIER, SCHEMA)
