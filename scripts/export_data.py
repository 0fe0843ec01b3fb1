"""Export the example data sets of specs/data/ once, from data shipped in scikit-learn, statsmodels.

Run `python scripts/export_data.py` (needs the `data` extra). The splits are fixed by a seed, so
re-running writes the same rows and arrays; specs/README.md records provenance and licences.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

SEED = 20240601
OUT = Path(__file__).resolve().parent.parent / "specs" / "data"
SUNSPOT_WINDOW = 12
SUNSPOT_TEST_FROM = 1949


def _snake(name: str) -> str:
    """`mean radius` -> `mean_radius`: CSV headers that are also valid spec names."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _split(
    n: int, test_fraction: float, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled row indices for train and test; stratified by `labels` when given."""
    rng = np.random.default_rng(SEED)
    if labels is None:
        order = rng.permutation(n)
        n_test = round(n * test_fraction)
        return order[n_test:], order[:n_test]
    train: list[int] = []
    test: list[int] = []
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        n_test = round(len(rows) * test_fraction)
        test.extend(rows[:n_test].tolist())
        train.extend(rows[n_test:].tolist())
    # Shuffle across classes so that a validation split (the last rows) sees every class.
    return rng.permutation(np.array(train)), rng.permutation(np.array(test))


def _format(value: object) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value)) if not float(value).is_integer() else str(int(value))
    return str(value)


def _write_csv(
    path: Path, header: Sequence[str], rows: np.ndarray, labels: Sequence[object]
) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row, label in zip(rows, labels, strict=True):
            writer.writerow([_format(v) for v in row] + [_format(label)])
    print(f"wrote {path.relative_to(OUT.parent.parent)} ({len(rows)} rows)")


def _export_table(
    name: str,
    x: np.ndarray,
    labels: np.ndarray,
    columns: Sequence[str],
    target: str,
    stratify: bool,
) -> None:
    train, test = _split(len(x), 0.2, labels if stratify else None)
    header = [*columns, target]
    _write_csv(OUT / f"{name}_train.csv", header, x[train], labels[train].tolist())
    _write_csv(OUT / f"{name}_test.csv", header, x[test], labels[test].tolist())


def export_iris() -> None:
    from sklearn.datasets import load_iris

    data = load_iris()
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    species = np.asarray(data.target_names)[data.target]
    _export_table("iris", data.data, species, columns, "species", stratify=True)


def export_breast_cancer() -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    columns = [_snake(c) for c in data.feature_names]
    diagnosis = np.asarray(data.target_names)[data.target]
    _export_table("breast_cancer", data.data, diagnosis, columns, "diagnosis", stratify=True)


def export_diabetes() -> None:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    _export_table(
        "diabetes", data.data, data.target, data.feature_names, "progression", stratify=False
    )


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = data.data.astype(np.uint8)
    train, test = _split(len(pixels), 0.2, data.target)
    return pixels[train], data.target[train], pixels[test], data.target[test]


def export_digits() -> None:
    x_train, y_train, x_test, y_test = _digits()
    header = [*(f"px{i}" for i in range(64)), "digit"]
    _write_csv(OUT / "digits_train.csv", header, x_train, y_train.tolist())
    _write_csv(OUT / "digits_test.csv", header, x_test, y_test.tolist())


def _side_features(pixels: np.ndarray) -> np.ndarray:
    """Four hand-made features of an 8x8 digit: ink, top-half and left-half ink share, coverage."""
    images = pixels.reshape(-1, 8, 8).astype(np.float64)
    ink = images.sum(axis=(1, 2))
    safe = np.maximum(ink, 1.0)
    top = images[:, :4, :].sum(axis=(1, 2)) / safe
    left = images[:, :, :4].sum(axis=(1, 2)) / safe
    coverage = (images > 0).mean(axis=(1, 2))
    return np.stack([ink / (16.0 * 64.0), top, left, coverage], axis=1).astype(np.float32)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez_compressed(path, **arrays)
    print(f"wrote {path.relative_to(OUT.parent.parent)} ({', '.join(arrays)})")


def export_digits_multi_io() -> None:
    x_train, y_train, x_test, y_test = _digits()
    for split, pixels, digit in (("train", x_train, y_train), ("test", x_test, y_test)):
        _save_npz(
            OUT / f"digits_multi_{split}.npz",
            image=pixels.reshape(-1, 8, 8, 1),
            meta=_side_features(pixels),
            digit=digit.astype(np.int64),
            big=(digit >= 5).astype(np.float32).reshape(-1, 1),
        )


def _pairs(pixels: np.ndarray, digit: np.ndarray, count: int, seed: int) -> dict[str, np.ndarray]:
    """Balanced pairs: half of them two images of the same digit, half of different digits."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(digit == d) for d in range(10)]
    first = rng.integers(0, len(pixels), size=count)
    same = np.arange(count) % 2 == 0
    second = np.empty(count, dtype=np.int64)
    for i, (a, is_same) in enumerate(zip(first, same, strict=True)):
        if is_same:
            second[i] = rng.choice(by_class[digit[a]])
        else:
            other = (digit[a] + rng.integers(1, 10)) % 10
            second[i] = rng.choice(by_class[other])
    return {
        "left": pixels[first].reshape(-1, 8, 8, 1),
        "right": pixels[second].reshape(-1, 8, 8, 1),
        "same": same.astype(np.float32).reshape(-1, 1),
    }


def export_digits_pairs() -> None:
    x_train, y_train, x_test, y_test = _digits()
    _save_npz(OUT / "digits_pairs_train.npz", **_pairs(x_train, y_train, 4000, SEED))
    _save_npz(OUT / "digits_pairs_test.npz", **_pairs(x_test, y_test, 1000, SEED + 1))


def export_sunspots() -> None:
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data
    years = frame["YEAR"].to_numpy().astype(np.int64)
    values = frame["SUNACTIVITY"].to_numpy().astype(np.float32)
    starts = np.arange(len(values) - SUNSPOT_WINDOW)
    windows = np.stack([values[s : s + SUNSPOT_WINDOW] for s in starts])[..., None]
    target = values[starts + SUNSPOT_WINDOW].reshape(-1, 1)
    target_year = years[starts + SUNSPOT_WINDOW]
    for split, rows in (
        ("train", target_year < SUNSPOT_TEST_FROM),
        ("test", target_year >= SUNSPOT_TEST_FROM),
    ):
        path = OUT / f"sunspots_{split}.npz"
        # Uncompressed, so the loader can memory-map every member.
        np.savez(path, x=windows[rows], y=target[rows], year=target_year[rows])
        print(f"wrote {path.relative_to(OUT.parent.parent)} ({int(rows.sum())} windows)")


EXPORTS: tuple[Callable[[], None], ...] = (
    export_iris,
    export_breast_cancer,
    export_diabetes,
    export_digits,
    export_digits_multi_io,
    export_digits_pairs,
    export_sunspots,
)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for export in EXPORTS:
        export()


if __name__ == "__main__":
    main()
