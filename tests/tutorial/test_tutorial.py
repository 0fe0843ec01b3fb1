"""Every Python block of the tutorial we grew from (a copy beside this file) runs with only its
import lines changed (`tensorflow` -> `engine`), and prints or returns what Keras would.

Blocks run in a fresh namespace holding `tf` (the tutorial's first import), after the earlier
blocks they build on; the tutorial's placeholders (`X_train`, `inputs1`, `layer1`, ...) are
filled with small random data or layers. Where the tutorial's own arithmetic and Keras
disagree (section 13's Conv2D count), the test holds Keras's number. No block is left out:
the tutorial has no TPU, SavedModel or tf.data code.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engine
from engine.layers.base import clear_session

TUTORIAL = (Path(__file__).parent / "TUTORIAL.md").read_text(encoding="utf-8")
BLOCKS = [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", TUTORIAL, re.S)]
# Blocks that cannot run here, with the reason: none (kept so that a new block says why).
NOT_RUN: dict[int, str] = {}

Namespace = dict[str, Any]
Check = Callable[[Namespace, str, list[Any]], None]


def ported(source: str) -> str:
    """The block with its import lines changed and nothing else."""
    return "\n".join(
        re.sub(r"\btensorflow\b", "engine", line)
        if re.match(r"\s*(import|from)\s+tensorflow\b", line)
        else line
        for line in source.splitlines()
    )


def run_block(index: int, ns: Namespace) -> list[Any]:
    """Run one block; the values of its bare expressions come back (what a notebook shows)."""
    values: list[Any] = []
    for node in ast.parse(ported(BLOCKS[index])).body:
        if isinstance(node, ast.Expr):
            values.append(eval(compile(ast.Expression(node.value), "<tutorial>", "eval"), ns))
        else:
            exec(compile(ast.Module([node], []), "<tutorial>", "exec"), ns)
    return values


def placeholders() -> Namespace:
    rng = np.random.default_rng(0)

    def xy(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 4)).astype(np.float32)
        return x, (x.sum(axis=1) > 0).astype(np.float32)

    X_train, y_train = xy(64)  # noqa: N806  (the tutorial's names)
    X_val, y_val = xy(16)  # noqa: N806
    X_test, y_test = xy(16)  # noqa: N806
    return {
        "tf": engine,
        "X_train": X_train,
        "y_train": y_train,
        "X_val": X_val,
        "y_val": y_val,
        "X_test": X_test,
        "y_test": y_test,
        "X_new": rng.normal(size=(5, 4)).astype(np.float32),
    }


# Placeholders that are layers or inputs, made only for a block that names them, so that
# they take no automatic name (`dense`, `input_layer`) from the tutorial's own layers.
SYMBOLIC: dict[str, Callable[[], Any]] = {
    "inputs1": lambda: engine.keras.Input(shape=(4,)),
    "inputs2": lambda: engine.keras.Input(shape=(4,)),
    "layer1": lambda: engine.keras.layers.Dense(16, activation="relu"),
    "layer2": lambda: engine.keras.layers.Dense(8, activation="relu"),
    "output_layer": lambda: engine.keras.layers.Dense(1, activation="sigmoid"),
}


ROW = re.compile(r"^ (\S+) \((\w+)\)\s+(\([^)]*\))\s+([\d,]+)\s*$")


def summary_rows(out: str) -> list[tuple[str, str, str, int]]:
    return [
        (m[1], m[2], m[3], int(m[4].replace(",", "")))
        for m in map(ROW.match, out.splitlines())
        if m
    ]


MLP_ROWS = [
    ("dense", "Dense", "(None, 16)", 80),
    ("dense_1", "Dense", "(None, 8)", 136),
    ("dense_2", "Dense", "(None, 1)", 9),
]


def is_mlp_summary(out: str, functional: bool = False) -> None:
    head = [("input_layer", "InputLayer", "(None, 4)", 0)] if functional else []
    assert summary_rows(out) == head + MLP_ROWS
    assert " Total params: 225 (900.00 B)" in out
    assert " Trainable params: 225 (900.00 B)" in out
    assert " Non-trainable params: 0 (0.00 B)" in out


def is_mlp(ns: Namespace, *_: Any) -> None:
    model = ns["model"]
    assert [tuple(w.shape) for w in model.weights] == [(4, 16), (16,), (16, 8), (8,), (8, 1), (1,)]
    assert model.count_params() == 225


def printed(expected: str) -> Check:
    def check(ns: Namespace, out: str, values: list[Any]) -> None:
        assert out == expected

    return check


def tensor_values(*expected: Any) -> Check:
    def check(ns: Namespace, out: str, values: list[Any]) -> None:
        assert [v.numpy().tolist() for v in values] == list(expected)

    return check


def trained(ns: Namespace, out: str, values: list[Any]) -> None:
    loss, acc = ns["loss"], ns["acc"]
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
    assert ns["predictions"].shape == (5, 1)
    assert np.all((ns["predictions"] > 0) & (ns["predictions"] < 1))
    assert "Epoch 10/10" in out


def my_dense_fragment(ns: Namespace, out: str, values: list[Any]) -> None:
    layer = ns["MyDense"]()
    layer.units = 3
    layer.build((None, 4))
    assert [(w.name, w.shape) for w in layer.weights] == [
        ("my_dense/kernel", (4, 3)),
        ("my_dense/bias", (3,)),
    ]
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(3))


def my_layer(ns: Namespace, out: str, values: list[Any]) -> None:
    """The issue's example: Keras gives (None, 3) and 4 parameters for the Dense after it."""
    layers = engine.keras.layers
    model = engine.keras.Sequential([layers.Input((8,)), ns["MyLayer"](3), layers.Dense(1)])
    assert [(r[0], r[2], r[3]) for r in summary_rows(summary_of(model))] == [
        ("my_layer", "(None, 3)", 24),
        ("dense", "(None, 1)", 4),
    ]
    x = np.random.default_rng(1).normal(size=(6, 8)).astype(np.float32)
    w = model.layers[0].w
    with engine.GradientTape() as tape:
        y = engine.reduce_sum(model.layers[0](x))
    np.testing.assert_allclose(tape.gradient(y, w).numpy(), np.repeat(x.sum(0)[:, None], 3, 1))


def summary_of(model: Any) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def shared_layer(ns: Namespace, out: str, values: list[Any]) -> None:
    assert ns["x1"].shape == ns["x2"].shape == (None, 32)
    model = engine.keras.Model([ns["inputs1"], ns["inputs2"]], [ns["x1"], ns["x2"]])
    assert model.count_params() == 4 * 32 + 32
    x = np.ones((2, 4), np.float32)
    a, b = model.predict([x, x])
    np.testing.assert_array_equal(a, b)


def dense_properties(ns: Namespace, out: str, values: list[Any]) -> None:
    lines = out.splitlines()
    assert lines[0] == "True" and lines[-1] == "(None, 10)"
    layer = ns["layer"]
    assert [w.name for w in layer.weights] == ["dense1/kernel", "dense1/bias"]
    assert [w.name for w in layer.trainable_weights] == ["dense1/kernel", "dense1/bias"]
    assert layer.weights[0].shape == (8, 10) and ns["y"].shape == (4, 10)
    expected = np.maximum(ns["x"].numpy() @ layer.weights[0].numpy(), 0)  # bias starts at 0
    np.testing.assert_allclose(ns["y"].numpy(), expected, rtol=1e-6)


def my_dense_regularized(ns: Namespace, out: str, values: list[Any]) -> None:
    """The custom layer's regularizer adds l2 * sum(k**2) to its losses and its constraint
    holds every kernel column's norm at most 0.5 after training, through `fit`."""
    keras = engine.keras
    layer = ns["MyDense"](
        2,
        kernel_regularizer=keras.regularizers.l2(1e-2),
        kernel_constraint=keras.constraints.max_norm(0.5),
    )
    model = keras.Sequential([keras.Input((4,)), layer])
    assert summary_rows(summary_of(model)) == [("my_dense", "MyDense", "(None, 2)", 10)]
    kernel = layer.kernel.numpy()
    assert float(layer.losses[0].numpy()) == pytest.approx(1e-2 * float((kernel**2).sum()))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    x = ns["X_train"]
    model.fit(x, 10 * np.stack([x[:, 0], -x[:, 1]], 1), epochs=3, verbose=0)
    norms = np.linalg.norm(layer.kernel.numpy(), axis=0)
    assert np.all(norms <= 0.5 + 1e-6) and np.any(norms > 0.49)


def dense_100(ns: Namespace, out: str, values: list[Any]) -> None:
    layer = ns["layer"]
    layer.build((None, 100))
    assert layer.count_params() == 100 * 32 + 32 == 3232


def empty_sequential(ns: Namespace, out: str, values: list[Any]) -> None:
    assert ns["model"].layers == [] and not ns["model"].built


def dense_value(ns: Namespace, out: str, values: list[Any]) -> None:
    (dense,) = values
    assert type(dense).__name__ == "Dense" and dense.config.units == 16
    assert dense.config.activation == "relu"


def dense_then_activation(ns: Namespace, out: str, values: list[Any]) -> None:
    dense, activation = values
    model = engine.keras.Sequential([engine.keras.Input((4,)), dense, activation])
    x = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    linear = x @ dense.weights[0].numpy() + dense.weights[1].numpy()
    np.testing.assert_allclose(model.predict(x), np.maximum(linear, 0), rtol=1e-6)


def mlp_summary(ns: Namespace, out: str, values: list[Any]) -> None:
    is_mlp_summary(out)


def functional_summary(ns: Namespace, out: str, values: list[Any]) -> None:
    is_mlp_summary(out, functional=True)


def fitted(epochs: int, keys: set[str]) -> Check:
    def check(ns: Namespace, out: str, values: list[Any]) -> None:
        history = ns["history"].history if "history" in ns else ns["model"].history.history
        assert set(history) == keys
        assert all(len(v) == epochs and np.all(np.isfinite(v)) for v in history.values())

    return check


def symbolic_input(ns: Namespace, out: str, values: list[Any]) -> None:
    assert ns["inputs"].shape == (None, 4)


def chunk(ns: Namespace, out: str, values: list[Any]) -> None:
    assert ns["x"].shape == (None, 16)


def model_function(ns: Namespace, out: str, values: list[Any]) -> None:
    assert ns["model_fn"](engine.keras.Input((4,))).shape == (None, 1)


def compiled(loss: str) -> Check:
    def check(ns: Namespace, out: str, values: list[Any]) -> None:
        assert ns["model"].compile_config["loss"] == loss

    return check


def curves(ns: Namespace, out: str, values: list[Any]) -> None:
    lines = ns["plt"].gca().get_lines()
    assert [line.get_label() for line in lines] == ["train_acc", "val_acc"]
    assert all(len(line.get_ydata()) == 20 for line in lines)
    ns["plt"].close("all")


def evaluated(ns: Namespace, out: str, values: list[Any]) -> None:
    loss, acc = ns["model"].evaluate(ns["X_test"], ns["y_test"], verbose=0)
    assert (ns["test_loss"], ns["test_acc"]) == (loss, acc)


def predicted(ns: Namespace, out: str, values: list[Any]) -> None:
    assert ns["predictions"].shape == (5, 1)


def workflow(ns: Namespace, out: str, values: list[Any]) -> None:
    last = out.splitlines()[-1]
    assert last == f"Test Loss: {ns['loss']:.4f}, Test Accuracy: {ns['acc']:.4f}"
    fitted(10, {"loss", "accuracy", "val_loss", "val_accuracy"})(ns, out, values)


def saved(ns: Namespace, out: str, values: list[Any]) -> None:
    path = Path("trained_model.h5")
    assert path.is_file()
    loaded = engine.keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(ns["X_new"]), ns["model"].predict(ns["X_new"]))


TENSOR_1 = "Tensor([1 2 3], shape=(3,), dtype=int32)\nTensor([11 12 13], shape=(3,), dtype=int32)\n"
TENSOR_7 = "(4,)\nTensor(1, shape=(), dtype=int32)\n"
TENSOR_9 = (
    "Tensor([11 22 33], shape=(3,), dtype=int32)\n"
    "Tensor([10 40 90], shape=(3,), dtype=int32)\n"
    "Tensor([[8]], shape=(1, 1), dtype=int32)\n"
)
BINARY = {"loss", "accuracy"}
VALIDATED = {"loss", "accuracy", "val_loss", "val_accuracy"}

# block index -> (blocks run before it, check)
CASES: dict[int, tuple[tuple[int, ...], Check]] = {
    0: ((), printed("Tensor(\n[[1 2 3]\n [4 5 6]], shape=(2, 3), dtype=int32)\n")),
    1: ((), printed(TENSOR_1)),
    2: ((), printed("Tensor(\n[[2. 4.]\n [6. 8.]], shape=(2, 2), dtype=float32)\n")),
    3: ((), printed("(2, 3)\n")),
    4: ((), printed("0\n1\n2\n3\n")),
    5: ((3,), tensor_values([5, 7, 9], [6, 15])),
    6: ((), printed("6\n")),
    7: ((), printed(TENSOR_7)),
    8: ((), printed("<dtype: 'float32'>\n")),
    9: ((), printed(TENSOR_9)),
    10: ((), mlp_summary),
    11: ((), functional_summary),
    12: ((11,), trained),
    13: ((), my_dense_fragment),
    14: ((), my_layer),
    15: ((), shared_layer),
    16: ((), dense_properties),
    17: ((), my_dense_regularized),
    18: ((), dense_100),
    19: ((), lambda ns, out, values: None),
    20: ((19,), is_mlp),
    21: ((19,), empty_sequential),
    22: ((19, 21), is_mlp),
    23: ((19,), dense_value),
    24: ((19,), dense_then_activation),
    25: ((19, 21, 22), mlp_summary),
    26: ((19, 21, 22), fitted(10, BINARY)),
    27: ((), mlp_summary),
    28: ((), symbolic_input),
    29: ((28,), chunk),
    30: ((), functional_summary),
    31: ((30,), is_mlp),
    32: ((), model_function),
    33: ((), is_mlp),
    34: ((), is_mlp),
    35: ((34,), is_mlp),
    36: ((34,), compiled("binary_crossentropy")),
    37: ((34,), compiled("sparse_categorical_crossentropy")),
    38: ((34, 36), fitted(10, VALIDATED)),
    39: ((34, 36), fitted(20, VALIDATED)),
    40: ((34, 36, 39), curves),
    41: ((34, 36, 39), evaluated),
    42: ((34, 36, 39), predicted),
    43: ((), workflow),
    44: ((34, 36, 39), saved),
}


def test_every_block_has_a_case_or_a_reason() -> None:
    assert len(BLOCKS) == 45
    assert sorted([*CASES, *NOT_RUN]) == list(range(len(BLOCKS)))
    assert all(re.search(r"\btensorflow\b", ported(b)) is None for b in BLOCKS)


@pytest.mark.parametrize("index", sorted(CASES))
def test_block(
    index: int,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if index == 40:
        pytest.importorskip("matplotlib").use("Agg")
    monkeypatch.chdir(tmp_path)
    clear_session()
    engine.random.set_seed(0)
    ns = placeholders()
    ns.update((k, make()) for k, make in SYMBOLIC.items() if re.search(rf"\b{k}\b", BLOCKS[index]))
    before, check = CASES[index]
    for earlier in before:
        run_block(earlier, ns)
    capsys.readouterr()
    values = run_block(index, ns)
    check(ns, capsys.readouterr().out, values)


@pytest.mark.parametrize(
    ("layer", "input_shape", "params"),
    [
        (lambda k: k.layers.Dense(64), (100,), 6464),
        # The tutorial prints 9248 here; 3*3*3*32 + 32 is Keras's count.
        (lambda k: k.layers.Conv2D(filters=32, kernel_size=(3, 3)), (28, 28, 3), 896),
        (lambda k: k.layers.BatchNormalization(), (10,), 40),
    ],
)
def test_section_13_parameter_counts_are_keras(
    layer: Callable[[Any], Any], input_shape: tuple[int, ...], params: int
) -> None:
    keras = engine.keras
    model = keras.Sequential([keras.Input(input_shape), layer(keras)])
    assert model.count_params() == params
