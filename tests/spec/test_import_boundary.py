"""Which modules the spec side loads: lint and summary stay off the training runtime.

`modelspec lint` runs on every commit through a pre-commit hook, so it must not pay for the
optimizers, the training loop, the data loaders, NumPy (whose import binds OpenBLAS) or the
kernels; `modelspec --help` must not even load pydantic or the engine. Each case runs in a
fresh interpreter, the only place where `sys.modules` tells what a command needs. A layer
module names its runtime through `engine.lazy` stand-ins, which sit in `sys.modules` until
first used: a module counts as loaded once its code has run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SPECS = Path(__file__).resolve().parents[2] / "specs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

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
    "engine.native",
    "engine.kernels.",
    "engine.fused.",
    "engine.backend",
    "engine.tensor",
    "engine.autodiff",
    "engine.dtypes",
    "numpy",
    "threadpoolctl",
)
NOT_FOR_HELP = ("engine", "numpy", "pydantic", "modelspec.check", "modelspec.schema")

RUN = """
import json, sys
from typer.testing import CliRunner
from modelspec.cli import app
result = CliRunner().invoke(app, {args!r})
names = list(sys.modules)
from engine.lazy import is_loaded
loaded = sorted(name for name in names if is_loaded(sys.modules[name]))
print(json.dumps({{"exit": result.exit_code, "modules": loaded}}))
"""


def _loaded(args: list[str]) -> tuple[int, list[str]]:
    code = RUN.format(args=args)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return int(result["exit"]), list(result["modules"])


def _offending(modules: list[str], banned: tuple[str, ...]) -> list[str]:
    """Modules named in `banned` or inside one of its packages (`pkg.` bans only the inside)."""
    return [
        m
        for m in modules
        if any(
            m.startswith(b) if b.endswith(".") else m == b or m.startswith(b + ".") for b in banned
        )
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["lint", str(SPECS)],
        ["lint", str(FIXTURES)],
        ["summary", str(SPECS / "digits_cnn.yaml")],
        ["summary", str(SPECS / "sunspots_gru.yaml")],
    ],
)
def test_lint_and_summary_load_no_training_runtime(args: list[str]) -> None:
    exit_code, modules = _loaded(args)
    assert exit_code == (1 if args[1] == str(FIXTURES) else 0)  # the fixtures hold bad specs
    assert "engine.layers.dense" in modules  # the check itself ran
    offending = _offending(modules, NOT_FOR_LINT)
    # A layer module imports NumPy, the backend, tensors and kernels from engine.lazy.
    assert offending == [], f"the spec side ran {offending[:5]}: import them via engine.lazy"


def test_help_loads_neither_the_engine_nor_numpy() -> None:
    exit_code, modules = _loaded(["--help"])
    assert exit_code == 0
    assert _offending(modules, NOT_FOR_HELP) == []


def test_a_layer_loads_its_runtime_when_used() -> None:
    """The stand-ins are the real modules once used: building a layer runs them all."""
    code = (
        "import sys\n"
        "from engine import layers\n"
        "from engine.lazy import is_loaded\n"
        "before = not is_loaded(sys.modules['numpy'])\n"
        "layer = layers.Dense(3)\n"
        "y = layer(__import__('numpy').ones((2, 4), dtype='float32'))\n"
        "after = [n for n, m in list(sys.modules.items()) if not is_loaded(m)]\n"
        "print(before, after, y.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "[]", "(2,", "3)"]
