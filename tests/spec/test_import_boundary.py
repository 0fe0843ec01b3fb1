"""Which modules the spec side loads: lint and summary stay off the training runtime.

`modelspec lint` runs on every commit through a pre-commit hook, so it must not pay for the
optimizers, the training loop, the data loaders or the compiled kernels (whose loading binds
OpenBLAS); `modelspec --help` must not even load NumPy, pydantic or the engine. Each case runs
in a fresh interpreter, the only place where `sys.modules` tells what a command needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SPECS = Path(__file__).resolve().parents[2] / "specs"

# Runtime parts a spec check never needs.
NOT_FOR_LINT = (
    "engine.optimizers",
    "engine.train",
    "engine.models",
    "engine.saving",
    "engine.callbacks",
    "engine.data",
    "engine.losses",
    "engine.metrics",
    "engine.ops",
    "engine.api",
    "engine.native._kernels",
    "engine.native._split",
    "threadpoolctl",
)
NOT_FOR_HELP = ("engine", "numpy", "pydantic", "modelspec.check", "modelspec.schema")

RUN = """
import json, sys
from typer.testing import CliRunner
from modelspec.cli import app
result = CliRunner().invoke(app, {args!r})
print(json.dumps({{"exit": result.exit_code, "modules": sorted(sys.modules)}}))
"""


def _loaded(args: list[str]) -> tuple[int, list[str]]:
    code = RUN.format(args=args)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return int(result["exit"]), list(result["modules"])


def _offending(modules: list[str], banned: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == b or m.startswith(b + ".") for b in banned)]


@pytest.mark.parametrize(
    "args",
    [
        ["lint", str(SPECS)],
        ["summary", str(SPECS / "digits_cnn.yaml")],
        ["summary", str(SPECS / "sunspots_gru.yaml")],
    ],
)
def test_lint_and_summary_load_no_training_runtime(args: list[str]) -> None:
    exit_code, modules = _loaded(args)
    assert exit_code == 0
    assert "engine.layers.dense" in modules  # the check itself ran
    assert _offending(modules, NOT_FOR_LINT) == []


def test_help_loads_neither_the_engine_nor_numpy() -> None:
    exit_code, modules = _loaded(["--help"])
    assert exit_code == 0
    assert _offending(modules, NOT_FOR_HELP) == []
