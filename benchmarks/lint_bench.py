"""Time the spec side as users feel it: start-up of `--help` and `lint`, and lint throughput.

Usage: `python benchmarks/lint_bench.py [--count 1000] [--repeat 15]`.

Start-up: `python -c pass`, `modelspec --help` and `modelspec lint` of one spec each run
`--repeat` times, interleaved, in fresh interpreters with bytecode caching on (as installed
users have it); the report gives each command's median wall and CPU time and its gap to bare
Python, measured in the same run so machine load hits all alike. Targets: both gaps within
0.3 s. Throughput: `lint` of `--count` generated specs in one process (expanding the folder,
checking, reporting), mixing Sequential and Functional models, valid ones and ones with typos,
so every stage of the checker runs. Target: >= 500 specs per second.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from modelspec.commands import spec as spec_commands

GAP_TARGET_S = 0.3
SPECS_PER_S_TARGET = 500
ROOT = Path(__file__).resolve().parents[1]

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


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def startup(repeat: int) -> bool:
    """Median wall/CPU time of each command and its gap to bare Python; whether gaps are met."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cli = [sys.executable, "-m", "modelspec.cli"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "modelspec --help": [*cli, "--help"],
        "modelspec lint (1 spec)": [*cli, "lint", str(ROOT / "specs" / "iris_mlp.yaml")],
    }
    for command in commands.values():  # writes the bytecode caches
        _timed(command, env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            times[name].append(_timed(command, env))
    base_wall = statistics.median(w for w, _ in times["python -c pass"])
    base_cpu = statistics.median(c for _, c in times["python -c pass"])
    met = True
    print(f"{'command':<26}{'wall s':>9}{'cpu s':>9}{'wall gap':>10}{'cpu gap':>9}")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        gap = wall - base_wall
        print(f"{name:<26}{wall:>9.3f}{cpu:>9.3f}{gap:>10.3f}{cpu - base_cpu:>9.3f}")
        if name != "python -c pass":
            met = met and gap <= GAP_TARGET_S
    return met


def throughput(count: int) -> bool:
    app = typer.Typer()
    spec_commands.register(app)
    with tempfile.TemporaryDirectory() as tmp:
        write_specs(Path(tmp), count)
        CliRunner().invoke(app, ["lint", str(Path(tmp) / "spec_0000.yaml")])  # warm the schema
        start, cpu_start = time.perf_counter(), time.process_time()
        result = CliRunner().invoke(app, ["lint", tmp, "--format", "json"])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rate = count / elapsed
    print(
        f"linted {count} specs in {elapsed:.2f} s (exit {result.exit_code}): {rate:.0f} specs/s"
        f" ({count / cpu:.0f} per CPU second)"
    )
    return rate >= SPECS_PER_S_TARGET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    fast_start = startup(args.repeat)
    fast_lint = throughput(args.count)
    print(f"start-up gaps within {GAP_TARGET_S} s: {'yes' if fast_start else 'NO'}")
    print(f"throughput >= {SPECS_PER_S_TARGET} specs/s: {'yes' if fast_lint else 'NO'}")


if __name__ == "__main__":
    main()
