"""Folders of images or text files, one subfolder per class, read as Keras's
`image_dataset_from_directory` and `text_dataset_from_directory` read them: classes in
alphabetical order (or `class_names`), files shuffled with `seed` by NumPy's RandomState as Keras
does before a `validation_split`, the last fraction being the validation subset. Images are
decoded by Pillow, float32 in 0..255, `(height, width, channels)`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.config.data import DataSource, ImageOptions
from engine.data import DataError, Format, Table
from engine.streaming.units import Chunk, Unit, files_in, merge

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEXT_SUFFIXES = (".txt",)
FILES_PER_UNIT = 256
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def _pillow() -> Any:
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise DataError(
            "image folders need Pillow, which is not installed: pip install 'modelspec[data]'"
        ) from None
    return Image, ImageOps


def index_directory(
    root: Path, suffixes: tuple[str, ...], source: DataSource
) -> tuple[list[Path], np.ndarray, list[str]]:
    """The files, their class ids and the class names, split as the spec's subset asks."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (an image or text data set is a folder)")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    names = source.class_names or found
    unknown = sorted(set(names) - set(found))
    if unknown:
        raise DataError(f"{root}: class_names {unknown} have no subfolder; it has {found}")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        members = sorted(
            p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in suffixes
        )
        files += members
        labels += [label] * len(members)
    if not files:
        raise DataError(f"{root}: no {', '.join(suffixes)} files in class subfolders {names}")
    ids = np.asarray(labels, dtype=np.int64)
    if source.validation_split is not None:
        order = np.random.RandomState(source.seed).permutation(len(files))
        files, ids = [files[i] for i in order], ids[order]
        held_out = int(source.validation_split * len(files))
        keep = slice(-held_out, None) if source.subset == "validation" else slice(None, -held_out)
        files, ids = files[keep], ids[keep]
    return files, ids, list(names)


def _labels(ids: np.ndarray, classes: int, mode: str | None) -> np.ndarray | None:
    if mode is None:
        return None
    if mode == "categorical":
        return np.eye(classes, dtype=np.float32)[ids]
    if mode == "binary":
        return ids.astype(np.float32)[:, None]
    return ids.astype(np.int32)


class FolderSource:
    """Images or text files by class subfolder; one unit per `FILES_PER_UNIT` files."""

    exact = False

    def __init__(
        self, path: Path, source: DataSource, format: Format, unlabelled: bool = False
    ) -> None:
        self.path = path
        self.format = format
        self.skipped: list[str] = []
        self._source = source
        suffixes = IMAGE_SUFFIXES if format == "images" else TEXT_SUFFIXES
        if unlabelled:
            self.files = files_in(path, suffixes, format)
            self.ids, self.class_names = np.zeros(len(self.files), np.int64), list[str]()
        else:
            self.files, self.ids, self.class_names = index_directory(path, suffixes, source)
        if source.label_mode == "binary" and len(self.class_names) != 2:
            raise DataError(
                f"{path}: label_mode binary needs exactly 2 classes; found "
                f"{len(self.class_names)} ({', '.join(self.class_names)})"
            )
        self.units = [
            Unit(
                path, start, min(FILES_PER_UNIT, len(self.files) - start), f"files {start}+", start
            )
            for start in range(0, len(self.files), FILES_PER_UNIT)
        ]

    def read(self, unit: Unit, columns: list[str] | None = None) -> Iterator[Chunk]:
        span = range(unit.index, unit.index + (unit.rows or 0))
        decode = self._image if self.format == "images" else self._text
        samples, kept = [], []
        for i in span:
            try:
                samples.append(decode(self.files[i]))
            except DataError as exc:
                if self._source.bad_data != "skip":
                    raise
                self.skipped.append(str(exc))
                continue
            kept.append(i)
        x = np.stack(samples) if self.format == "images" and samples else np.asarray(samples)
        if self.format == "images" and not samples:
            x = np.empty((0, *self.image_shape), np.float32)
        chunk: Chunk = {"x": x}
        labels = _labels(self.ids[kept], len(self.class_names), self._source.label_mode)
        if labels is not None:
            chunk["y"] = labels
        yield chunk

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width = self._source.image_size
        return height, width, _CHANNELS[self._source.color_mode]

    def _image(self, file: Path) -> np.ndarray:
        image_module, image_ops = _pillow()
        height, width = self._source.image_size
        method = _resampling(image_module, self._source.interpolation)
        try:
            with image_module.open(file) as image:
                image = image.convert(_MODES[self._source.color_mode])
                if self._source.crop_to_aspect_ratio:
                    image = image_ops.fit(image, (width, height), method=method)
                else:
                    image = image.resize((width, height), method)
                array = np.asarray(image, dtype=np.float32)
        except (OSError, ValueError, image_module.DecompressionBombError) as exc:
            raise DataError(f"{file}: not a readable image ({exc})") from exc
        return array.reshape(self.image_shape)

    def _text(self, file: Path) -> str:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{file}: not a readable UTF-8 text file ({exc})") from exc
        return text[: self._source.max_length] if self._source.max_length else text

    def nbytes(self) -> int:
        if self.format == "images":
            return len(self.files) * int(np.prod(self.image_shape)) * 4
        return sum(f.stat().st_size for f in self.files)


def _resampling(image_module: Any, name: str) -> Any:
    table = image_module.Resampling
    return {
        "bilinear": table.BILINEAR,
        "nearest": table.NEAREST,
        "bicubic": table.BICUBIC,
        "area": table.BOX,
        "lanczos3": table.LANCZOS,
    }[name]


def read_images(path: Path, options: ImageOptions) -> tuple[Table, list[Path]]:
    """Every image of a folder (any depth, sorted) or one image file, decoded as a model's
    training images were (`options` from its data schema), for prediction."""
    source = DataSource(path=str(path), format="images", label_mode=None, **options.model_dump())
    reader = FolderSource(path, source, "images", unlabelled=True)
    chunks = [chunk for unit in reader.units for chunk in reader.read(unit)]
    return Table(path, "images", merge(chunks)), reader.files
