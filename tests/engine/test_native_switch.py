"""`MODELSPEC_NATIVE=0` runs the engine as if no C compiler had been there at install time.

With the switch, no compiled module loads and a whole training run (the split products, Adam,
the LSTM steps, the Embedding gradient) takes the NumPy composites: the weights and metrics
must be the native run's, bit for bit, as the house promises for every kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from engine import native
from engine.backend import get_backend
from engine.build import from_spec

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "benchmarks" / "workloads"
needs_native = pytest.mark.skipif(not native.available(), reason="built without a C compiler")


@pytest.mark.parametrize("value", ["0", "off", "false", "No"])
def test_the_switch_turns_every_kernel_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.SWITCH, value)
    monkeypatch.setattr(native, "_ext", native._Extensions())
    assert not native.available()
    assert not native.split_gemm_available()
    z = np.ones((2, 3), dtype=np.float32)
    assert not native.bias_relu(z, None, True)


@pytest.mark.parametrize("value", ["", "1", "on"])
def test_other_values_leave_the_kernels_as_built(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(native.SWITCH, raising=False)
    monkeypatch.setattr(native, "_ext", native._Extensions())
    built = native.available()
    monkeypatch.setenv(native.SWITCH, value)
    monkeypatch.setattr(native, "_ext", native._Extensions())
    assert native.available() == built


def test_a_process_with_the_switch_loads_no_compiled_module() -> None:
    script = (
        "import sys, numpy as np, engine.native as n\n"
        "from engine.build import from_spec\n"
        "m = from_spec({'model': {'type': 'sequential', 'layers': [{'type': 'Input', 'shape': [3]},"
        " {'type': 'Dense', 'units': 2}]}, 'compile': {'optimizer': 'adam', 'loss': 'mse'}})\n"
        "m.fit(np.ones((4, 3), 'float32'), np.ones((4, 2), 'float32'), verbose=0)\n"
        "print(n.available(), [k for k in sys.modules if k.startswith('engine.native._')])\n"
    )
    env = {**os.environ, native.SWITCH: "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False []"


def _train(spec: dict[str, Any]) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    model = from_spec(spec)
    rng = np.random.default_rng(3)
    batch = min(spec["fit"]["batch_size"], 32)  # still large enough to split W2's products
    (t,) = model.inputs
    shape = (3 * batch + 5, *t.shape[1:])
    layers = spec["model"]["layers"]
    vocabulary = min((entry["input_dim"] for entry in layers if "input_dim" in entry), default=0)
    x = rng.integers(1, vocabulary, shape) if "int" in t.dtype else rng.random(shape, np.float32)
    units = model.outputs[0].shape[-1]
    y = (
        rng.integers(0, units, len(x)).astype(np.int32)
        if units > 1
        else rng.integers(0, 2, (len(x), 1)).astype(np.float32)
    )
    history = model.fit(x, y, epochs=2, batch_size=batch, verbose=0)
    return history.history, [np.array(w.data) for w in model.weights]


def _spec(name: str) -> dict[str, Any]:
    spec = yaml.safe_load((WORKLOADS / f"{name}.yaml").read_text())
    spec["compile"]["metrics"] = ["accuracy"]
    return spec


@needs_native
@pytest.mark.parametrize(
    "name", ["seed_mlp", "mnist_mlp", "lstm_text", "mnist_cnn", "resnet_cifar", "transformer_text"]
)
def test_training_without_the_kernels_is_bit_identical(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(name)
    # the direct convolution, the fused convolution + pooling backward and the fused attention
    # sum in another order than their fallbacks: held to float32 rounding below, and left out
    # of this bit-for-bit comparison
    for kernel in ORDERED_DIFFERENTLY:
        monkeypatch.setattr(native._ext, kernel, None)
    native_history, native_weights = _train(spec)
    monkeypatch.setenv(native.SWITCH, "0")
    monkeypatch.setattr(native, "_ext", native._Extensions())
    numpy_history, numpy_weights = _train(spec)
    assert numpy_history == native_history
    for a, b in zip(native_weights, numpy_weights, strict=True):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


# (workload, kernel): the compiled kernels whose sums differ from their fallbacks' in the last bits
ORDERED_DIFFERENTLY_ON = [
    ("mnist_cnn", "conv_direct"),
    ("mnist_cnn", "conv_pool"),
    ("resnet_cifar", "conv_direct"),
    ("transformer_text", "attention"),
]
ORDERED_DIFFERENTLY = sorted({kernel for _, kernel in ORDERED_DIFFERENTLY_ON})


@needs_native
@pytest.mark.parametrize(("name", "kernel"), ORDERED_DIFFERENTLY_ON)
def test_training_with_a_differently_ordered_kernel_repeats_and_stays_close(
    name: str, kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same seed, same bits with the kernel; close to the NumPy path after eight Adam steps.
    Adam turns a rounding difference in a gradient near zero into up to a whole step
    (lr = 1e-3) of difference in the weight, hence the weights' absolute tolerance."""
    spec = _spec(name)
    history, weights = _train(spec)
    again_history, again = _train(spec)
    assert again_history == history
    for a, b in zip(weights, again, strict=True):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    monkeypatch.setattr(native._ext, kernel, None)
    numpy_history, numpy_weights = _train(spec)
    np.testing.assert_allclose(history["loss"], numpy_history["loss"], rtol=1e-3)
    for a, b in zip(weights, numpy_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=4e-3)


def test_compiled_names_every_module_pyproject_declares() -> None:
    from tests.packaging.venvs import declared_kernels

    assert set(native.COMPILED) == declared_kernels()


def test_available_means_every_module_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """One optional module that failed to compile makes `available()` False; `built()` names it."""
    monkeypatch.delenv(native.SWITCH, raising=False)
    extensions = native._Extensions()
    extensions.split = None
    monkeypatch.setattr(native, "_ext", extensions)
    assert not native.built()["_split"]
    assert not native.available()
    assert not native.split_gemm_available()


def test_each_compiled_module_loads_once_and_other_names_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loader serves exactly `COMPILED`, importing each module at its first read only."""
    monkeypatch.delenv(native.SWITCH, raising=False)
    loads: list[str] = []
    real_load = native._load

    def counting_load(name: str) -> Any:
        loads.append(name)
        return real_load(name)

    monkeypatch.setattr(native, "_load", counting_load)
    extensions = native._Extensions()
    first = [getattr(extensions, name[1:]) for name in native.COMPILED]
    again = [getattr(extensions, name[1:]) for name in native.COMPILED]
    assert loads == list(native.COMPILED)
    assert all(a is b for a, b in zip(first, again, strict=True))
    with pytest.raises(AttributeError, match="'_Extensions' object has no attribute 'kernel'"):
        extensions.kernel  # noqa: B018
    assert not hasattr(extensions, "_pool")


@needs_native
@pytest.mark.parametrize(
    ("name", "dtypes"),
    [
        ("im2col", [np.float32]),
        ("conv_direct", [np.float32]),
        ("pool", [np.float32, np.uint8]),
        ("batch_norm", [np.float32]),
    ],
)
def test_a_driven_module_takes_only_plain_arrays_of_its_dtypes(
    name: str, dtypes: list[type]
) -> None:
    checker = getattr(native, name)
    plain = [np.zeros((4, 6), dtype=dtype) for dtype in dtypes]
    assert checker(*plain) is getattr(native._ext, name)
    assert checker(*plain, plain[0][:, ::2]) is None
    assert checker(*plain, np.zeros(3, dtype=np.float64)) is None
    assert checker(*plain, np.zeros(3, dtype=np.int8)) is None
    assert checker(*plain, [0.0]) is None
    fake = get_backend("fake")
    assert checker(*(fake.asarray(a) for a in plain)) is None
