"""Image and text folders read as Keras's image_dataset_from_directory and
text_dataset_from_directory read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine.config.data import DataSource
from engine.data import InputSpec, ModelSignature, OutputSpec
from engine.streaming import open_data, open_stream
from tests.streaming.files import write_images

pytest.importorskip("PIL")


def _signature(shape: tuple[int, ...], loss: str, width: int, dtype: str = "float32") -> Any:
    return ModelSignature(
        (InputSpec("features", shape, dtype),), (OutputSpec("label", (width,), loss),)
    )


def test_images_decode_resize_and_label_by_folder(tmp_path: Path) -> None:
    from PIL import Image

    root = write_images(tmp_path)
    source = DataSource(path=str(root), image_size=(6, 4), color_mode="grayscale")
    signature = _signature((6, 4, 1), "sparse_categorical_crossentropy", 2)
    data, schema = open_data(source, tmp_path, signature)
    x, y = data.x["features"], data.y["label"]  # type: ignore[union-attr]
    assert x.shape == (10, 6, 4, 1) and x.dtype == np.float32
    assert list(y) == [0] * 5 + [1] * 5
    with Image.open(root / "cat" / "0.png") as image:
        expected = np.asarray(image.convert("L").resize((4, 6), Image.Resampling.BILINEAR))
    assert np.array_equal(x[0, :, :, 0], expected.astype(np.float32))
    assert schema.format == "images"


def test_validation_split_is_keras_s_split(tmp_path: Path) -> None:
    root = write_images(tmp_path, per_class=10)
    signature = _signature((8, 8, 3), "categorical_crossentropy", 2)
    picked = {}
    for subset in ("training", "validation"):
        source = DataSource(
            path=str(root),
            image_size=(8, 8),
            label_mode="categorical",
            validation_split=0.25,
            subset=subset,
            seed=1337,
        )
        picked[subset] = open_stream(source, tmp_path, signature).source.files  # type: ignore[attr-defined]
    everything = sorted(root.rglob("*.png"))
    order = np.random.RandomState(1337).permutation(len(everything))
    assert picked["validation"] == [everything[i] for i in order[-5:]]
    assert picked["training"] == [everything[i] for i in order[:-5]]


def test_text_folders_give_strings(tmp_path: Path) -> None:
    for name, texts in {"neg": ["bad", "awful film"], "pos": ["great", "lovely"]}.items():
        (tmp_path / name).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / name / f"{i}.txt").write_text(text)
    source = DataSource(path=str(tmp_path), format="text", label_mode="binary", max_length=4)
    signature = _signature((), "binary_crossentropy", 1, "string")
    data, _ = open_data(source, tmp_path, signature)
    assert sorted(data.x["features"]) == ["awfu", "bad", "grea", "love"]  # type: ignore[union-attr]
    assert data.y["label"].shape == (4, 1)  # type: ignore[union-attr]


def test_folder_options_belong_to_folders() -> None:
    with pytest.raises(ValidationError, match="image_size apply to `format: images`"):
        DataSource(path="d.parquet", image_size=(3, 3))
    with pytest.raises(ValidationError, match="validation_split` needs a `seed"):
        DataSource(path="i", format="images", validation_split=0.2, subset="training")
