"""Time `modelspec lint` over a few hundred generated specs and print specs per second.

Usage: `python benchmarks/lint_bench.py [--count 300]`. The specs mix Sequential and Functional
models, valid ones and ones with typos, so every stage of the checker runs. The timing covers the
`lint` command itself (expanding the folder, checking, reporting), not interpreter start-up.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from modelspec.commands import spec as spec_commands

ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "relu6"]


def sequential(rng: random.Random) -> dict[str, object]:
    layers: list[dict[str, object]] = [{"type": "Input", "shape": [rng.randint(2, 64)]}]
    for _ in range(rng.randint(2, 8)):
        layers.append(
            {"type": "Dense", "units": rng.randint(1, 128), "activation": rng.choice(ACTIVATIONS)}
        )
        if rng.random() < 0.3:
            layers.append({"type": "Dropout", "rate": 0.2})
    layers.append({"type": "Dense", "units": 3, "activation": "softmax"})
    return {
        "model": {"type": "sequential", "layers": layers},
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
        "fit": {"epochs": 5, "batch_size": 32, "validation_split": 0.2},
    }


def functional(rng: random.Random) -> dict[str, object]:
    width = rng.randint(4, 32)
    return {
        "model": {
            "type": "functional",
            "inputs": [{"name": "image", "shape": [16, 16, 1]}, {"name": "meta", "shape": [width]}],
            "layers": [
                {
                    "name": "conv",
                    "type": "Conv2D",
                    "filters": 8,
                    "kernel_size": 3,
                    "activation": "relu",
                    "inputs": "image",
                },
                {"name": "pool", "type": "MaxPooling2D", "pool_size": 2},
                {"name": "flat", "type": "Flatten"},
                {"name": "both", "type": "Concatenate", "inputs": ["flat", "meta"]},
                {"name": "hidden", "type": "Dense", "units": rng.randint(8, 64)},
                {"name": "out", "type": "Dense", "units": 1, "activation": "sigmoid"},
            ],
            "outputs": ["out"],
        },
        "compile": {
            "optimizer": {"type": "sgd", "learning_rate": 0.1},
            "loss": "binary_crossentropy",
            "metrics": ["accuracy"],
        },
    }


def broken(rng: random.Random) -> dict[str, object]:
    doc = sequential(rng)
    layer = doc["model"]["layers"][1]  # type: ignore[index]
    layer["type"], layer["unit"] = "Dence", layer.pop("units")
    return doc


def write_specs(folder: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    makers = [sequential, functional, broken]
    for i in range(count):
        doc = makers[i % len(makers)](rng)
        (folder / f"spec_{i:04d}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    app = typer.Typer()
    spec_commands.register(app)
    with tempfile.TemporaryDirectory() as tmp:
        write_specs(Path(tmp), args.count)
        CliRunner().invoke(app, ["lint", str(Path(tmp) / "spec_0000.yaml")])  # warm the schema
        start = time.perf_counter()
        result = CliRunner().invoke(app, ["lint", tmp, "--format", "json"])
        elapsed = time.perf_counter() - start
    print(f"linted {args.count} specs in {elapsed:.2f} s (exit {result.exit_code})")
    print(f"{args.count / elapsed:.0f} specs per second")


if __name__ == "__main__":
    main()
