"""Make the Keras fixtures of tests/fixtures/keras/ and check the export side against Keras.

Keras is a dev-only dependency: run this by hand in a scratch venv that has it, e.g.
`python3 -m venv /tmp/kv && /tmp/kv/bin/pip install keras jax h5py`, then
`/tmp/kv/bin/python scripts/make_keras_fixtures.py --modelspec .venv/bin/modelspec`.

Each fixture is a small Keras model with seeded, non-trivial weights saved as `NAME.keras`
(some also as a legacy whole-model `NAME.h5`) beside `NAME.npz`: fixed inputs (`in/<input>`)
and Keras's predictions on them (`out/<output>`), so tests compare without Keras. With
`--modelspec`, every fixture also goes import -> export through the modelspec CLI and the
exported file is loaded back with `keras.saving.load_model` (safe_mode on); the largest
difference from Keras's own predictions is written to `roundtrip.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras"
SEED = 1234
BATCH = 3


def _randomize(model: keras.Model, rng: np.random.Generator) -> None:
    """Seeded weights that are not initial values (variances stay positive)."""
    values = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            values.append(rng.uniform(0.5, 1.5, shape))
        elif "count" in weight.path:
            values.append(np.full(shape, 10))
        else:
            values.append(rng.normal(0.0, 0.5, shape))
    model.set_weights([v.astype(w.dtype) for v, w in zip(values, model.weights, strict=True)])


def _mlp() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(
                8,
                activation="relu",
                kernel_regularizer=keras.regularizers.L2(1e-3),
                kernel_constraint=keras.constraints.MaxNorm(3.0),
            ),
            layers.Dropout(0.2),
            layers.Dense(6, activation="tanh", use_bias=False),
            layers.Dense(3, activation="softmax"),
        ],
        name="iris_mlp",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.002),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _embedding_lstm() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((7,), dtype="int32"),
            layers.Embedding(20, 5, mask_zero=True),
            layers.LSTM(4, return_sequences=True),
            layers.LSTM(3),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="embedding_lstm",
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _cnn_batchnorm() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Conv2D(3, (2, 2), strides=(1, 2), use_bias=False),
            layers.AveragePooling2D(pool_size=(1, 1)),
            layers.GlobalMaxPooling2D(),
            layers.Dense(2),
        ],
        name="cnn_batchnorm",
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    return model


def _multi_io() -> keras.Model:
    image = keras.Input((6, 6, 1), name="image")
    meta = keras.Input((3,), name="meta")
    x = layers.Conv2D(2, 3, activation="relu", name="conv")(image)
    x = layers.Flatten(name="flat")(x)
    both = layers.Concatenate(name="both")([x, meta])
    hidden = layers.Dense(5, activation="relu", name="hidden")(both)
    digit = layers.Dense(4, activation="softmax", name="digit")(hidden)
    big = layers.Dense(1, activation="sigmoid", name="big")(hidden)
    model = keras.Model([image, meta], [digit, big], name="multi_io")
    model.compile(
        optimizer="adam",
        loss={"digit": "sparse_categorical_crossentropy", "big": "binary_crossentropy"},
        loss_weights={"digit": 1.0, "big": 0.5},
        metrics={"digit": ["accuracy"], "big": ["accuracy"]},
    )
    return model


def _shared() -> keras.Model:
    left = keras.Input((5,), dtype="int32", name="left")
    right = keras.Input((5,), dtype="int32", name="right")
    embed = layers.Embedding(12, 4, name="embed")
    encode = layers.GRU(3, name="encode")
    a = encode(embed(left))
    b = encode(embed(right))
    diff = layers.Subtract(name="diff")([a, b])
    prod = layers.Multiply(name="prod")([a, b])
    dot = layers.Dot(axes=1, name="dot")([a, b])
    merged = layers.Concatenate(name="merged")([diff, prod, dot])
    out = layers.Dense(1, name="score")(merged)
    return keras.Model([left, right], out, name="shared")


def _sequences() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((9, 3)),
            layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="elu"),
            layers.Conv1D(4, 2, strides=2, padding="same"),
            layers.MaxPooling1D(2, padding="same"),
            layers.GRU(3, return_sequences=True, reset_after=False),
            layers.SimpleRNN(3, return_sequences=True, go_backwards=True),
            layers.Bidirectional(layers.LSTM(2, return_sequences=True), merge_mode="sum"),
            layers.TimeDistributed(layers.Dense(2)),
            layers.AveragePooling1D(1),
            layers.GlobalAveragePooling1D(),
        ],
        name="sequences",
    )
    return model


def _shapes_and_norms() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((6,)),
            layers.Normalization(mean=[0.5] * 6, variance=[2.0] * 6),
            layers.Rescaling(0.5, offset=0.1),
            layers.Reshape((3, 2)),
            layers.Permute((2, 1)),
            layers.LayerNormalization(),
            layers.Flatten(),
            layers.RepeatVector(2),
            layers.Masking(mask_value=0.0),
            layers.Bidirectional(layers.GRU(2)),
            layers.Activation("gelu"),
            layers.Dense(3, activation="leaky_relu"),
        ],
        name="shapes_and_norms",
    )
    return model


def _merging() -> keras.Model:
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    added = layers.Add()([a, b])
    avg = layers.Average()([a, b])
    mx = layers.Maximum()([a, b])
    mn = layers.Minimum()([added, avg])
    both = layers.Concatenate(axis=-1)([mn, mx])
    out = layers.Dense(2, activation="softplus")(both)
    return keras.Model([a, b], [out, added], name="merging")


def _conv3d() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4, 4, 4, 1)),
            layers.Conv3D(2, 2, activation="sigmoid"),
            layers.MaxPooling3D(1),
            layers.AveragePooling3D(1),
            layers.Flatten(),
            layers.Dense(2),
        ],
        name="conv3d",
    )


def _variants() -> keras.Model:
    """Arguments off their defaults: groups, adapted statistics, merge modes, normalize."""
    seq = keras.Input((6, 4), name="seq")
    x = layers.Normalization(axis=-1, name="adapted")(seq)
    x = layers.Conv1D(4, 2, groups=2, name="grouped1d")(x)
    x = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode="mul")(x)
    x = layers.Bidirectional(layers.GRU(2, return_sequences=True), merge_mode="ave")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(3, name="project")(x)
    image = keras.Input((5, 5, 4), name="image")
    y = layers.Conv2D(4, 3, groups=2, padding="same", name="grouped2d")(image)
    y = layers.BatchNormalization(center=False, epsilon=0.01, name="bn")(y)
    y = layers.GlobalAveragePooling2D(keepdims=True)(y)
    y = layers.Flatten()(y)
    y = layers.Dense(3, activation="selu", kernel_initializer="he_normal", name="features")(y)
    cosine = layers.Dot(axes=1, normalize=True, name="cosine")([x, y])
    both = layers.Concatenate(name="both")([x, y, cosine])
    out = layers.Dense(2, activation="softmax", name="out")(both)
    return keras.Model([seq, image], [out, cosine], name="variants")


def _image_variants() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            layers.ZeroPadding2D(((1, 0), (0, 2))),
            layers.Cropping2D(((1, 1), (0, 1))),
            layers.UpSampling2D((1, 2)),
            layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"),
            layers.SeparableConv2D(4, 2, padding="same"),
            layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
            layers.SpatialDropout2D(0.3),
            layers.GaussianNoise(0.1),
            layers.Identity(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(2),
        ],
        name="image_variants",
    )


def _attention() -> keras.Model:
    query = keras.Input((4, 6), name="query")
    value = keras.Input((5, 6), name="value")
    v = layers.ZeroPadding1D(2)(value)
    v = layers.Cropping1D((1, 2))(v)
    v = layers.UpSampling1D(1)(v)
    v = layers.SpatialDropout1D(0.2)(v)
    dot = layers.Attention(use_scale=True, name="dot")([query, v])
    causal = layers.Attention(name="causal")([query, query], use_causal_mask=True)
    additive = layers.AdditiveAttention(name="additive")([query, v])
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")(query, v)
    cross = layers.MultiHeadAttention(2, 2, value_dim=2, use_bias=False, name="cross")(
        query, v, key=v, use_causal_mask=False
    )
    both = layers.Add()([dot, causal, additive, mha, cross])
    return keras.Model([query, value], layers.GlobalAveragePooling1D()(both), name="attention")


def _einsum() -> keras.Model:
    tokens = keras.Input((4, 6), name="tokens")
    x = layers.EinsumDense("abc,cd->abd", (None, 5), bias_axes="d", activation="relu")(tokens)
    y = layers.GroupQueryAttention(
        head_dim=3, num_query_heads=4, num_key_value_heads=2, name="gqa"
    )(x, x)
    return keras.Model(tokens, layers.GlobalAveragePooling1D()(y), name="einsum")


def _activations() -> keras.Model:
    """Keras's activation layers, arguments on and off their defaults; PReLU learns slopes."""
    return keras.Sequential(
        [
            keras.Input((5, 4)),
            layers.Dense(4),
            layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2),
            layers.Dense(4),
            layers.LeakyReLU(negative_slope=0.2),
            layers.PReLU(shared_axes=[1]),
            layers.ELU(alpha=0.5),
            layers.Dense(4),
            layers.PReLU(),
            layers.ReLU(),
            layers.LeakyReLU(),
            layers.Softmax(axis=1),
            layers.Flatten(),
            layers.Dense(3),
            layers.Softmax(),
        ],
        name="activations",
    )


FIXTURES: dict[str, Callable[[], keras.Model]] = {
    "mlp": _mlp,
    "embedding_lstm": _embedding_lstm,
    "cnn_batchnorm": _cnn_batchnorm,
    "multi_io": _multi_io,
    "shared": _shared,
    "sequences": _sequences,
    "shapes_and_norms": _shapes_and_norms,
    "merging": _merging,
    "conv3d": _conv3d,
    "variants": _variants,
    "image_variants": _image_variants,
    "attention": _attention,
    "einsum": _einsum,
    "activations": _activations,
}
LEGACY_H5 = ("mlp", "multi_io", "activations")


def _layer_name(tensor: Any) -> str:
    """The name of the layer that made a tensor: the spec's name for an input or output."""
    return str(tensor._keras_history[0].name)


def _inputs(model: keras.Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    data = {}
    for tensor in model.inputs:
        shape = (BATCH, *tensor.shape[1:])
        name = _layer_name(tensor)
        if "int" in str(tensor.dtype):
            tokens = rng.integers(1, 12, shape)
            tokens[:, -2:] = 0  # padding that a mask_zero Embedding masks
            tokens[0, 0] = 0
            data[name] = tokens.astype("int32")
        else:
            data[name] = rng.normal(0.0, 1.0, shape).astype("float32")
    return data


def _predict(model: keras.Model, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    ordered = [inputs[_layer_name(t)] for t in model.inputs]
    out = model.predict(ordered if len(ordered) > 1 else ordered[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


def _unsafe_fixtures() -> None:
    """Archives an import must refuse: Python bytecode in a Lambda, and a custom class."""
    lam = keras.Sequential([keras.Input((3,)), layers.Lambda(lambda x: x * 2.0, name="double")])
    lam.save(OUT / "unsafe_lambda.keras")

    @keras.saving.register_keras_serializable(package="demo")
    class Scale(layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 3.0

    custom = keras.Sequential([keras.Input((3,)), Scale(name="scale")])
    custom.save(OUT / "custom_layer.keras")


def make(only: list[str] | None = None) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in FIXTURES.items():
        if only and name not in only:
            continue
        keras.backend.clear_session()
        keras.utils.set_random_seed(SEED)
        rng = np.random.default_rng(SEED)
        model = build()
        _randomize(model, rng)
        inputs = _inputs(model, rng)
        model.save(OUT / f"{name}.keras")
        # Predict with the saved model: set_weights leaves Normalization's derived
        # statistics stale until the layer is loaded (or adapted) again.
        outputs = _predict(keras.saving.load_model(OUT / f"{name}.keras"), inputs)
        if name in LEGACY_H5:
            model.save(OUT / f"{name}.h5")
        arrays = {f"in/{k}": v for k, v in inputs.items()}
        names = [_layer_name(t) for t in model.outputs]
        arrays |= {f"out/{n}": o for n, o in zip(names, outputs, strict=True)}
        arrays["output_names"] = np.array(names)
        np.savez(OUT / f"{name}.npz", **arrays)
    if not only:
        _unsafe_fixtures()


def _roundtrip(modelspec: str, names: list[str]) -> dict[str, Any]:
    """import -> export through the CLI, then Keras loads the export and predicts."""
    record: dict[str, Any] = {"keras_version": keras.__version__, "backend": "jax", "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            run = Path(tmp) / name
            exported = Path(tmp) / f"{name}.keras"
            for args in (
                ["import", str(OUT / f"{name}.keras"), "--out", str(run)],
                ["export", str(run), "--format", "keras", "--output", str(exported)],
            ):
                subprocess.run([modelspec, *args], check=True, capture_output=True)
            model = keras.saving.load_model(exported, safe_mode=True)
            data = np.load(OUT / f"{name}.npz")
            inputs = {k[3:]: data[k] for k in data.files if k.startswith("in/")}
            got = _predict(model, inputs)
            want = [data[f"out/{n}"] for n in data["output_names"]]
            diff = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True))
            record["models"][name] = {"max_abs_diff": diff, "ok": diff <= 1e-5}
            print(f"{name}: Keras reloads the export, max |diff| {diff:.2e}")
    return record


TRAINED_EXAMPLES = (
    "iris_mlp",
    "digits_cnn",
    "digits_multi_io",
    "digits_siamese",
    "digits_unet",
    "sunspots_gru",
)
# Run with modelspec's own Python: the trained model's predictions on seeded inputs.
_PREDICT = """
import sys, numpy as np
from engine import load_model
model = load_model(sys.argv[1])
rng = np.random.default_rng(0)
inputs = {}
for t in model.inputs:
    shape = (4, *t.shape[1:])
    inputs[t.name] = rng.integers(0, 3, shape).astype(t.dtype) if "int" in t.dtype \
        else rng.normal(size=shape).astype("float32")
out = model.predict([inputs[t.name] for t in model.inputs] if len(inputs) > 1 else
                    inputs[model.inputs[0].name])
out = out if isinstance(out, list) else [out]
np.savez(sys.argv[2], **{f"in/{k}": v for k, v in inputs.items()},
         **{f"out/{i}": o for i, o in enumerate(out)})
"""


def _trained_examples(modelspec: str) -> dict[str, Any]:
    """Example specs trained one epoch by modelspec, exported, loaded and run by Keras."""
    python = str(Path(modelspec).parent / "python")
    specs = Path(__file__).resolve().parent.parent / "specs"
    record = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in TRAINED_EXAMPLES:
            run, exported, ours = (Path(tmp) / f"{name}{s}" for s in ("", ".keras", ".npz"))
            for args in (
                [modelspec, "train", str(specs / f"{name}.yaml"), "--out", str(run)]
                + ["--set", "fit.epochs=1"],
                [modelspec, "export", str(run), "--format", "keras", "--output", str(exported)],
                [python, "-c", _PREDICT, str(run), str(ours)],
            ):
                subprocess.run(args, check=True, capture_output=True)
            model = keras.saving.load_model(exported, safe_mode=True)
            data = np.load(ours)
            inputs = {k[3:]: data[k] for k in data.files if k.startswith("in/")}
            got = _predict(model, inputs)
            diff = max(float(np.max(np.abs(g - data[f"out/{i}"]))) for i, g in enumerate(got))
            record[name] = {"max_abs_diff": diff, "ok": diff <= 1e-5}
            print(f"{name}: trained by modelspec, Keras predicts the same, max |diff| {diff:.2e}")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modelspec", help="the modelspec executable, to check round trips")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(FIXTURES), help="remake only these fixtures"
    )
    args = parser.parse_args()
    make(args.only)
    if not args.modelspec:
        return
    if args.only:
        # the other fixtures' entries and the trained examples stay as last recorded
        record = json.loads((OUT / "roundtrip.json").read_text())
        record["models"] |= _roundtrip(args.modelspec, args.only)["models"]
    else:
        record = _roundtrip(args.modelspec, list(FIXTURES))
        record["trained_examples"] = _trained_examples(args.modelspec)
    (OUT / "roundtrip.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    checks = [*record["models"].values(), *record["trained_examples"].values()]
    if not all(m["ok"] for m in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
