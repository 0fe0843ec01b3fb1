"""Small generated data files of each kind the streaming pipeline reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data import InputSpec, ModelSignature, OutputSpec

ROWS, WIDTH = 300, 6
SIGNATURE = ModelSignature(
    (InputSpec("features", (WIDTH,)),),
    (OutputSpec("label", (3,), "sparse_categorical_crossentropy"),),
)


def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(ROWS, WIDTH)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    return x, y


def write_npy(folder: Path) -> dict[str, str]:
    x, y = arrays()
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return {"path": str(folder / "x.npy"), "y": str(folder / "y.npy")}


def write_npz(folder: Path) -> dict[str, str]:
    x, y = arrays()
    np.savez(folder / "d.npz", x=x, y=y)
    return {"path": str(folder / "d.npz")}


def _table() -> object:
    import pyarrow as pa

    x, y = arrays()
    return pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), WIDTH), "y": y})


def write_parquet(folder: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    table = _table()
    (folder / "parts").mkdir()
    pq.write_table(table.slice(0, 200), folder / "parts" / "a.parquet", row_group_size=32)  # type: ignore[attr-defined]
    pq.write_table(table.slice(200), folder / "parts" / "b.parquet", row_group_size=32)  # type: ignore[attr-defined]
    return {"path": str(folder / "parts"), "x": "x", "target": "y"}


def write_arrow(folder: Path) -> dict[str, str]:
    import pyarrow.feather as feather

    feather.write_feather(_table(), folder / "d.feather", chunksize=50)
    return {"path": str(folder / "d.feather"), "x": "x", "target": "y"}


def write_csv(folder: Path) -> dict[str, str]:
    x, y = arrays()
    header = ",".join([*(f"f{i}" for i in range(WIDTH)), "y"])
    rows = zip(x, y, strict=True)
    lines = [",".join([*(repr(float(v)) for v in r), str(int(t))]) for r, t in rows]
    (folder / "d.csv").write_text("\n".join([header, *lines]) + "\n")
    return {"path": str(folder / "d.csv"), "target": "y", "format": "csv"}


WRITERS = {
    "npy": write_npy,
    "npz": write_npz,
    "parquet": write_parquet,
    "arrow": write_arrow,
    "csv": write_csv,
}


def write_images(folder: Path, per_class: int = 5) -> Path:
    from PIL import Image

    rng = np.random.default_rng(3)
    root = folder / "images"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(12, 9, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root
