"""ONNX export: every converter and every example spec run in onnxruntime and match predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import activations
from engine.build import SpecError, from_spec
from engine.export_onnx import CONVERTERS, ExportError, export_model, export_onnx

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
TOLERANCE = 1e-5


def _sequential(shape: list[int], *layers: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": 3,
        "model": {"type": "sequential", "layers": [{"type": "Input", "shape": shape}, *layers]},
    }


def _merge(kind: str, **args: Any) -> dict[str, Any]:
    return {
        "seed": 3,
        "model": {
            "type": "functional",
            "inputs": [{"name": "a", "shape": [6]}, {"name": "b", "shape": [6]}],
            "layers": [
                {"name": "da", "type": "Dense", "units": 4, "inputs": "a"},
                {"name": "db", "type": "Dense", "units": 4, "inputs": "b"},
                {"name": "m", "type": kind, "inputs": ["da", "db"], **args},
            ],
            "outputs": ["m"],
        },
    }


def _attention(
    args: dict[str, Any], key: bool = False, mask: bool = False, key_width: int = 3
) -> dict[str, Any]:
    inputs = [{"name": "q", "shape": [6, 8]}, {"name": "v", "shape": [6, 5]}]
    ports = {"query": "q", "value": "v"}
    if key:
        inputs.append({"name": "k", "shape": [6, key_width]})
        ports["key"] = "k"
    if mask:
        inputs.append({"name": "allowed", "shape": [6, 6], "dtype": "bool"})
        ports["attention_mask"] = "allowed"
    layer = {"name": "m", "type": "MultiHeadAttention", "num_heads": 2, "key_dim": 4, **args}
    layer = {k: v for k, v in layer.items() if v is not None}
    return {
        "seed": 3,
        "model": {
            "type": "functional",
            "inputs": inputs,
            "layers": [{**layer, "inputs": ports}],
            "outputs": ["m"],
        },
    }


def _act(name: Any) -> dict[str, Any]:
    return _sequential([5], {"type": "Dense", "units": 4, "activation": name})


CASES: dict[str, dict[str, Any]] = {
    **{f"act-{a}": _act(a) for a in activations.names()},
    "act-gelu-tanh": _act({"type": "gelu", "approximate": True}),
    "activation-layer": _sequential([5], {"type": "Activation", "activation": "tanh"}),
    "relu-layers": _sequential(
        [6],
        {"type": "ReLU"},
        {"type": "Dense", "units": 6},
        {"type": "ReLU", "max_value": 0.5, "negative_slope": 0.1, "threshold": 0.2},
    ),
    "leaky-relu-elu-layers": _sequential(
        [6], {"type": "LeakyReLU", "negative_slope": 0.2}, {"type": "ELU", "alpha": 0.5}
    ),
    "softmax-layers": _sequential(
        [3, 4], {"type": "Softmax", "axis": 1}, {"type": "Softmax", "axis": [1, 2]}
    ),
    "prelu": _sequential(
        [3, 4],
        {"type": "PReLU", "shared_axes": [1]},
        {"type": "PReLU"},
        {"type": "Dense", "units": 2},
    ),
    "dropout-flatten": _sequential(
        [3, 4], {"type": "Dropout", "rate": 0.5}, {"type": "Flatten"}, {"type": "Dense", "units": 2}
    ),
    "reshape-permute": _sequential(
        [12], {"type": "Reshape", "target_shape": [3, 4]}, {"type": "Permute", "dims": [2, 1]}
    ),
    "repeat-vector": _sequential([4], {"type": "RepeatVector", "n": 3}),
    "rescaling": _sequential([4], {"type": "Rescaling", "scale": 0.5, "offset": -1.0}),
    "conv1d-causal-dilated": _sequential(
        [9, 3],
        {
            "type": "Conv1D",
            "filters": 4,
            "kernel_size": 3,
            "padding": "causal",
            "dilation_rate": 2,
            "activation": "relu",
        },
    ),
    "conv1d-same-strided": _sequential(
        [9, 3], {"type": "Conv1D", "filters": 4, "kernel_size": 4, "strides": 2, "padding": "same"}
    ),
    "conv2d-valid": _sequential(
        [7, 6, 2], {"type": "Conv2D", "filters": 3, "kernel_size": [3, 2], "use_bias": False}
    ),
    "conv2d-same-groups": _sequential(
        [7, 6, 4],
        {
            "type": "Conv2D",
            "filters": 6,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "groups": 2,
        },
    ),
    "conv3d": _sequential([4, 5, 4, 2], {"type": "Conv3D", "filters": 2, "kernel_size": 2}),
    "maxpool2d-same": _sequential(
        [7, 7, 2], {"type": "MaxPooling2D", "pool_size": 2, "padding": "same"}
    ),
    "avgpool2d-same": _sequential(
        [7, 5, 2], {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"}
    ),
    "maxpool1d": _sequential([8, 3], {"type": "MaxPooling1D", "pool_size": 3}),
    "maxpool3d": _sequential([4, 4, 4, 1], {"type": "MaxPooling3D", "strides": 1}),
    "avgpool1d-same": _sequential([7, 3], {"type": "AveragePooling1D", "padding": "same"}),
    "global-max2d": _sequential([4, 5, 3], {"type": "GlobalMaxPooling2D"}),
    "global-avg1d": _sequential([6, 3], {"type": "GlobalAveragePooling1D"}),
    "embedding": {
        "seed": 3,
        "model": {
            "type": "sequential",
            "layers": [
                {"type": "Input", "shape": [5], "dtype": "int32"},
                {"type": "Embedding", "input_dim": 7, "output_dim": 3},
                {"type": "Flatten"},
            ],
        },
    },
    "bidirectional-concat-seq": _sequential(
        [5, 3],
        {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 4, "return_sequences": True}},
    ),
    "bidirectional-ave-gru": _sequential(
        [5, 3], {"type": "Bidirectional", "layer": {"type": "GRU", "units": 4}, "merge_mode": "ave"}
    ),
    "bidirectional-sum-mul": _sequential(
        [5, 3],
        {
            "type": "Bidirectional",
            "merge_mode": "sum",
            "layer": {"type": "SimpleRNN", "units": 4, "return_sequences": True},
        },
        {"type": "Bidirectional", "merge_mode": "mul", "layer": {"type": "SimpleRNN", "units": 2}},
    ),
    "time-distributed-dense": _sequential(
        [5, 3], {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}}
    ),
    "time-distributed-conv": _sequential(
        [4, 6, 6, 1],
        {"type": "TimeDistributed", "layer": {"type": "Conv2D", "filters": 2, "kernel_size": 3}},
    ),
    "avgpool3d": _sequential([4, 4, 4, 1], {"type": "AveragePooling3D"}),
    "global-avg2d": _sequential([4, 5, 3], {"type": "GlobalAveragePooling2D"}),
    "global-max1d-keepdims": _sequential([6, 3], {"type": "GlobalMaxPooling1D", "keepdims": True}),
    "batchnorm": _sequential([6, 3], {"type": "BatchNormalization"}),
    "batchnorm-axis1": _sequential(
        [6, 3], {"type": "BatchNormalization", "axis": 1, "center": False}
    ),
    "layernorm": _sequential([6, 3], {"type": "LayerNormalization"}),
    "normalization": _sequential([6, 3], {"type": "Normalization"}),
    "simple-rnn": _sequential([5, 3], {"type": "SimpleRNN", "units": 4}),
    "simple-rnn-backwards-seq": _sequential(
        [5, 3], {"type": "SimpleRNN", "units": 4, "go_backwards": True, "return_sequences": True}
    ),
    "lstm": _sequential([5, 3], {"type": "LSTM", "units": 4}),
    "lstm-seq-backwards": _sequential(
        [5, 3], {"type": "LSTM", "units": 4, "return_sequences": True, "go_backwards": True}
    ),
    "gru-reset-after": _sequential([5, 3], {"type": "GRU", "units": 4, "return_sequences": True}),
    "gru-reset-before": _sequential([5, 3], {"type": "GRU", "units": 4, "reset_after": False}),
    **{
        f"merge-{k}": _merge(k)
        for k in ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]
    },
    "merge-dot": _merge("Dot", axes=1),
    "merge-dot-normalized": _merge("Dot", axes=1, normalize=True),
    "depthwise-separable": _sequential(
        [7, 6, 3],
        {
            "type": "DepthwiseConv2D",
            "kernel_size": [3, 2],
            "strides": 2,
            "padding": "same",
            "depth_multiplier": 2,
            "activation": "relu",
        },
        {"type": "SeparableConv2D", "filters": 4, "kernel_size": 2, "depth_multiplier": 2},
    ),
    "conv-transpose-same": _sequential(
        [4, 3, 3],
        {
            "type": "Conv2DTranspose",
            "filters": 2,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "activation": "relu",
        },
    ),
    "conv-transpose-valid": _sequential(
        [3, 4, 2],
        {"type": "Conv2DTranspose", "filters": 3, "kernel_size": 2, "strides": 3},
        {
            "type": "Conv2DTranspose",
            "filters": 2,
            "kernel_size": 3,
            "dilation_rate": 2,
            "use_bias": False,
        },
    ),
    "reshaping-1d": _sequential(
        [6, 2],
        {"type": "ZeroPadding1D", "padding": [2, 1]},
        {"type": "UpSampling1D", "size": 3},
        {"type": "Cropping1D", "cropping": [1, 0]},
        {"type": "SpatialDropout1D", "rate": 0.5},
        {"type": "GaussianNoise", "stddev": 0.1},
    ),
    "reshaping-2d": _sequential(
        [4, 5, 2],
        {"type": "ZeroPadding2D", "padding": [[1, 0], [2, 3]]},
        {"type": "UpSampling2D", "size": [2, 3]},
        {"type": "Cropping2D", "cropping": [[0, 2], [1, 1]]},
        {"type": "SpatialDropout2D", "rate": 0.5},
        {"type": "Identity"},
    ),
    "luong-causal-key": _attention(
        {
            "type": "Attention",
            "use_scale": True,
            "use_causal_mask": True,
            "num_heads": None,
            "key_dim": None,
        },
        key=True,
        key_width=8,
    ),
    "luong-concat": _attention(
        {
            "type": "Attention",
            "score_mode": "concat",
            "use_scale": True,
            "num_heads": None,
            "key_dim": None,
        },
        key=True,
        key_width=8,
    ),
    "bahdanau": _attention(
        {"type": "AdditiveAttention", "use_causal_mask": True, "num_heads": None, "key_dim": None},
        key=True,
        key_width=8,
    ),
    "bahdanau-no-scale": _attention(
        {"type": "AdditiveAttention", "use_scale": False, "num_heads": None, "key_dim": None},
        key=True,
        key_width=8,
    ),
    "einsum-dense": _sequential(
        [4, 6],
        {
            "type": "EinsumDense",
            "equation": "abc,cde->abde",
            "output_shape": [None, 2, 3],
            "bias_axes": "de",
            "activation": "tanh",
        },
        {"type": "Reshape", "target_shape": [4, 6]},
        {"type": "EinsumDense", "equation": "...b,bc->...c", "output_shape": 5},
        {"type": "EinsumDense", "equation": "ab...,bc->ac...", "output_shape": 3, "bias_axes": "c"},
    ),
    "position-embedding": _sequential([5, 4], {"type": "PositionEmbedding", "sequence_length": 7}),
    "mha-self": {
        "seed": 3,
        "model": {
            "type": "functional",
            "inputs": [{"name": "x", "shape": [6, 8]}],
            "layers": [
                {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3, "inputs": ["x", "x"]}
            ],
            "outputs": ["multi_head_attention"],
        },
    },
    "mha-causal-window-cross": _attention(
        {"use_causal_mask": True, "sliding_window": 3, "value_dim": 5, "output_shape": [2, 3]},
        key=True,
    ),
    "mha-attention-mask-no-bias": _attention({"use_bias": False}, mask=True),
    "gqa-causal-key": _attention(
        {
            "type": "GroupQueryAttention",
            "head_dim": 3,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "use_causal_mask": True,
            "num_heads": None,
            "key_dim": None,
        },
        key=True,
    ),
    "gqa-mask-no-bias": _attention(
        {
            "type": "GroupQueryAttention",
            "head_dim": 2,
            "num_query_heads": 3,
            "num_key_value_heads": 1,
            "use_bias": False,
            "num_heads": None,
            "key_dim": None,
        },
        mask=True,
    ),
}


def _randomize(model: Any, rng: np.random.Generator) -> None:
    """Nonzero weights everywhere (variances positive), so every converter is exercised."""
    for w in model.weights:
        value = rng.standard_normal(w.shape).astype(w.numpy().dtype)
        if w.name.endswith(("variance", "count")):
            value = np.abs(value) + 0.5
        w.assign(value)


def _inputs(model: Any, rng: np.random.Generator) -> list[np.ndarray]:
    """Standard normal floats; small ids for integer inputs (embeddings, for one)."""
    return [
        rng.standard_normal((5, *t.shape[1:])).astype(t.dtype)
        if "float" in t.dtype
        else rng.integers(0, 7, (5, *t.shape[1:])).astype(t.dtype)
        for t in model.inputs
    ]


def _check(model: Any) -> None:
    rng = np.random.default_rng(0)
    xs = _inputs(model, rng)
    session = ort.InferenceSession(export_model(model).SerializeToString())
    got = session.run(None, dict(zip(model.input_names, xs, strict=True)))
    ref = model.predict(xs if len(xs) > 1 else xs[0])
    for a, b in zip(got, ref if isinstance(ref, list) else [ref], strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE)


def _build(spec: Any) -> Any:
    try:
        return from_spec(spec)
    except SpecError as exc:
        pytest.skip(f"the engine cannot build this yet: {exc}")


@pytest.mark.parametrize("spec", CASES.values(), ids=list(CASES))
def test_converter_matches_predict(spec: dict[str, Any]) -> None:
    model = _build(spec)
    _randomize(model, np.random.default_rng(1))
    _check(model)


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_example_spec_exports(spec: Path) -> None:
    _check(_build(spec))


def test_every_converter_has_a_case() -> None:
    covered = {
        entry["type"]
        for spec in CASES.values()
        for entry in spec["model"]["layers"]
        if entry["type"] != "Input"
    }
    assert set(CONVERTERS) <= covered


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"type": "Lambda", "expression": "x * 2"}, "'lam' \\(Lambda\\) has no ONNX export"),
        (
            {"type": "Dense", "units": 2, "activation": {"type": "relu", "max_value": 3.0}},
            "relu with \\['max_value'\\]",
        ),
        ({"type": "LSTM", "units": 2, "activation": "softsign"}, "'softsign' has no ONNX cell"),
    ],
)
def test_unsupported_layer_is_named(layer: dict[str, Any], message: str) -> None:
    shape = [4, 3] if layer["type"] == "LSTM" else [3]
    model = _build(_sequential(shape, {"name": "lam", **layer}))
    with pytest.raises(ExportError, match=message):
        export_model(model)


def test_export_from_saved_artifact(tmp_path: Path) -> None:
    from engine import saving

    model = _build(CASES["lstm"])
    saving.save_model(model, tmp_path / "run")
    out = export_onnx(tmp_path / "run", tmp_path / "model.onnx")
    session = ort.InferenceSession(str(out))
    x = np.ones((2, 5, 3), np.float32)
    np.testing.assert_allclose(
        session.run(None, {model.input_names[0]: x})[0],
        model.predict(x),
        rtol=TOLERANCE,
        atol=TOLERANCE,
    )


@pytest.mark.parametrize("opset", [12, 18])
def test_an_opset_outside_the_converters_range_is_refused(opset: int) -> None:
    model = _build(_sequential([4, 3], {"type": "Softmax", "axis": 1}))
    with pytest.raises(ExportError, match=f"opset {opset} is not supported; use an opset from 13"):
        export_model(model, opset)


def test_softmax_over_a_middle_axis_matches_predict_at_the_lowest_opset() -> None:
    """Before opset 13 ONNX's Softmax flattened every axis from `axis` on; 13 is the first
    that means the one axis, as Keras does."""
    model = _build(_sequential([4, 3], {"type": "Softmax", "axis": 1}))
    proto = export_model(model, 13)
    session = ort.InferenceSession(proto.SerializeToString())
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        session.run(None, {model.input_names[0]: x})[0],
        model.predict(x),
        rtol=TOLERANCE,
        atol=TOLERANCE,
    )
