"""Export a trained model to ONNX, layer by layer, for use outside this project (the `onnx` extra).

Tensors stay in Keras's channels_last layout between layers; convolutions and pooling transpose
to ONNX's channels_first around their node, and the recurrent layers reorder Keras's gates
(LSTM i,f,c,o -> ONNX i,o,f,c). Every exported graph has a symbolic batch dimension. A layer
with no converter here is an ExportError naming it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.loading import load_model

OPSET = 17
# The converters use the operators' forms of opsets 13-17: Softmax's axis means one axis only
# from 13 on, and from 18 the Reduce* operators take their axes as an input.
SUPPORTED_OPSETS = range(13, 18)
Shape = tuple[int | None, ...]


class ExportError(ValueError):
    """The model cannot be written as ONNX; the message names the layer and why."""


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ExportError(
            "ONNX export needs the `onnx` package: pip install 'modelspec[onnx]'"
        ) from None
    return onnx


class GraphBuilder:
    """Collects ONNX nodes and constant initializers with unique names."""

    def __init__(self, dtype: str) -> None:
        self.onnx = _onnx()
        self.dtype = np.dtype(dtype)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}__{self._count}"

    def const(self, stem: str, value: Any, dtype: Any = None) -> str:
        """A constant tensor (float ones in the model's dtype unless `dtype` says otherwise)."""
        array = np.asarray(value, dtype=dtype or self.dtype)
        name = self.fresh(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def ints(self, stem: str, values: Sequence[int]) -> str:
        return self.const(stem, list(values), np.int64)

    def op(self, op_type: str, inputs: Sequence[str], stem: str, **attrs: Any) -> str:
        out = self.fresh(stem)
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def op_n(
        self, op_type: str, inputs: Sequence[str], stem: str, outputs: int, **attrs: Any
    ) -> list[str]:
        names = [self.fresh(stem) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, **attrs))
        return names


# ----- activations -------------------------------------------------------------------------
Emit = Callable[[GraphBuilder, str, str, dict[str, Any]], str]


def _gelu(g: GraphBuilder, x: str, stem: str, args: dict[str, Any]) -> str:
    half = g.op("Mul", [x, g.const("half", 0.5)], stem)
    if args.get("approximate"):
        cube = g.op("Pow", [x, g.const("three", 3.0)], stem)
        inner = g.op("Add", [x, g.op("Mul", [cube, g.const("c", 0.044715)], stem)], stem)
        scaled = g.op("Mul", [inner, g.const("k", math.sqrt(2.0 / math.pi))], stem)
        core = g.op("Tanh", [scaled], stem)
    else:
        core = g.op("Erf", [g.op("Div", [x, g.const("sqrt2", math.sqrt(2.0))], stem)], stem)
    return g.op("Mul", [half, g.op("Add", [core, g.const("one", 1.0)], stem)], stem)


def _simple(op_type: str, **attrs: Any) -> Emit:
    return lambda g, x, stem, args: g.op(op_type, [x], stem, **attrs)


def _clip(low: float, high: float) -> Emit:
    return lambda g, x, stem, args: g.op("Clip", [x, g.const("lo", low), g.const("hi", high)], stem)


ACTIVATIONS: dict[str, Emit] = {
    "linear": lambda g, x, stem, args: x,
    "relu": _simple("Relu"),
    "sigmoid": _simple("Sigmoid"),
    "tanh": _simple("Tanh"),
    "softmax": lambda g, x, stem, args: g.op("Softmax", [x], stem, axis=args.get("axis", -1)),
    "log_softmax": lambda g, x, stem, args: g.op(
        "LogSoftmax", [x], stem, axis=args.get("axis", -1)
    ),
    "elu": lambda g, x, stem, args: g.op("Elu", [x], stem, alpha=args.get("alpha", 1.0)),
    "selu": _simple("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805),
    "gelu": _gelu,
    "leaky_relu": lambda g, x, stem, args: g.op(
        "LeakyRelu", [x], stem, alpha=args.get("negative_slope", 0.2)
    ),
    "relu6": _clip(0.0, 6.0),
    "softplus": _simple("Softplus"),
    "softsign": _simple("Softsign"),
    "silu": lambda g, x, stem, args: g.op("Mul", [x, g.op("Sigmoid", [x], stem)], stem),
    "hard_sigmoid": _simple("HardSigmoid", alpha=1.0 / 6.0, beta=0.5),
    "exponential": _simple("Exp"),
}
_ACTIVATION_ALIASES = {"swish": "silu"}
# Recurrent cells take activation names inside the ONNX op.
_CELL_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


def _activation_parts(spec: Any, layer_name: str) -> tuple[str, dict[str, Any]]:
    if spec is None:
        return "linear", {}
    if isinstance(spec, str):
        return _ACTIVATION_ALIASES.get(spec, spec), {}
    data = spec.model_dump(exclude_none=True)
    name = data.pop("type")
    if name == "relu" and data:
        raise ExportError(f"layer {layer_name!r}: relu with {sorted(data)} cannot be exported")
    return _ACTIVATION_ALIASES.get(name, name), data


def activation(g: GraphBuilder, x: str, spec: Any, layer_name: str) -> str:
    name, args = _activation_parts(spec, layer_name)
    if name not in ACTIVATIONS:
        raise ExportError(f"layer {layer_name!r}: activation {name!r} has no ONNX form")
    return ACTIVATIONS[name](g, x, layer_name, args)


# ----- converters --------------------------------------------------------------------------
Converter = Callable[[GraphBuilder, Any, list[str], list[Shape]], str]
CONVERTERS: dict[str, Converter] = {}


def converter(*type_names: str) -> Callable[[Converter], Converter]:
    """Register a converter for these layer types."""

    def add(fn: Converter) -> Converter:
        for name in type_names:
            CONVERTERS[name] = fn
        return fn

    return add


def _params(layer: Any) -> dict[str, np.ndarray]:
    return {w.name.rsplit("/", 1)[-1]: w.numpy() for w in layer.weights}


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def _to_channels_first(g: GraphBuilder, x: str, rank: int, stem: str) -> str:
    return g.op("Transpose", [x], stem, perm=[0, rank - 1, *range(1, rank - 1)])


def _to_channels_last(g: GraphBuilder, x: str, rank: int, stem: str) -> str:
    return g.op("Transpose", [x], stem, perm=[0, *range(2, rank), 1])


def _same_pads(
    sizes: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> list[int]:
    """TensorFlow's 'same' padding (the extra pixel at the end), as ONNX begin+end pads."""
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilation, strict=True):
        if size is None:
            raise ExportError("'same' padding needs known spatial sizes")
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _pads(
    c: Any,
    shape: Shape,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
) -> list[int]:
    spatial = len(kernel)
    if c.padding == "valid":
        return [0] * (2 * spatial)
    if c.padding == "causal":
        return [(kernel[0] - 1) * dilation[0], 0]
    return _same_pads(shape[1:-1], kernel, strides, dilation)


@converter("Dense")
def _dense(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    p = _params(layer)
    y = g.op("MatMul", [xs[0], g.const("kernel", p["kernel"])], layer.name)
    if "bias" in p:
        y = g.op("Add", [y, g.const("bias", p["bias"])], layer.name)
    return activation(g, y, layer.config.activation, layer.name)


@converter("Conv1D", "Conv2D", "Conv3D")
def _conv(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    c, p = layer.config, _params(layer)
    rank = len(shapes[0])
    spatial = rank - 2
    kernel = p["kernel"]
    ksize = tuple(kernel.shape[:spatial])
    strides, dilation = _tuple(c.strides, spatial), _tuple(c.dilation_rate, spatial)
    w = np.transpose(kernel, (spatial + 1, spatial, *range(spatial)))
    inputs = [_to_channels_first(g, xs[0], rank, layer.name), g.const("kernel", w)]
    if "bias" in p:
        inputs.append(g.const("bias", p["bias"]))
    y = g.op(
        "Conv",
        inputs,
        layer.name,
        kernel_shape=list(ksize),
        strides=list(strides),
        dilations=list(dilation),
        group=c.groups,
        pads=_pads(c, shapes[0], ksize, strides, dilation),
    )
    return activation(g, _to_channels_last(g, y, rank, layer.name), c.activation, layer.name)


def _depthwise_conv(g: GraphBuilder, layer: Any, x: str, shape: Shape, bias: bool) -> str:
    """A channels-first grouped Conv, one group per input channel, from (kh, kw, C, dm)."""
    c, p = layer.config, _params(layer)
    kernel = p["kernel"] if "kernel" in p else p["depthwise_kernel"]
    kh, kw, channels, dm = kernel.shape
    strides, dilation = _tuple(c.strides, 2), _tuple(c.dilation_rate, 2)
    w = np.transpose(kernel.reshape(kh, kw, 1, channels * dm), (3, 2, 0, 1))
    inputs = [x, g.const("kernel", w)]
    if bias and "bias" in p:
        inputs.append(g.const("bias", p["bias"]))
    return g.op(
        "Conv",
        inputs,
        layer.name,
        kernel_shape=[kh, kw],
        strides=list(strides),
        dilations=list(dilation),
        group=channels,
        pads=_pads(c, shape, (kh, kw), strides, dilation),
    )


@converter("DepthwiseConv2D")
def _depthwise(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    x = _to_channels_first(g, xs[0], 4, layer.name)
    y = _depthwise_conv(g, layer, x, shapes[0], bias=True)
    return activation(
        g, _to_channels_last(g, y, 4, layer.name), layer.config.activation, layer.name
    )


@converter("SeparableConv2D")
def _separable(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    p = _params(layer)
    x = _to_channels_first(g, xs[0], 4, layer.name)
    middle = _depthwise_conv(g, layer, x, shapes[0], bias=False)
    inputs = [middle, g.const("kernel", np.transpose(p["pointwise_kernel"], (3, 2, 0, 1)))]
    if "bias" in p:
        inputs.append(g.const("bias", p["bias"]))
    y = g.op("Conv", inputs, layer.name, kernel_shape=[1, 1])
    return activation(
        g, _to_channels_last(g, y, 4, layer.name), layer.config.activation, layer.name
    )


@converter("Conv2DTranspose")
def _conv_transpose(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    from engine.conv_geometry import pad_amounts

    c, p = layer.config, _params(layer)
    kernel = p["kernel"]
    ksize = tuple(kernel.shape[:2])
    strides, dilation = _tuple(c.strides, 2), _tuple(c.dilation_rate, 2)
    out = layer.compute_output_shape(shapes[0])
    begin, end, extra = [], [], []
    for n, size, k, s, d in zip(shapes[0][1:3], out[1:3], ksize, strides, dilation, strict=True):
        if n is None:
            raise ExportError(f"layer {layer.name!r}: Conv2DTranspose needs known sizes")
        lo, hi = pad_amounts(size, k, s, c.padding, d)
        begin.append(lo)
        end.append(hi)
        extra.append(size - (s * (n - 1) + (k - 1) * d + 1 - lo - hi))
    inputs = [
        _to_channels_first(g, xs[0], 4, layer.name),
        g.const("kernel", np.transpose(kernel, (3, 2, 0, 1))),
    ]
    if "bias" in p:
        inputs.append(g.const("bias", p["bias"]))
    y = g.op(
        "ConvTranspose",
        inputs,
        layer.name,
        kernel_shape=list(ksize),
        strides=list(strides),
        dilations=list(dilation),
        pads=begin + end,
        output_padding=extra,
    )
    return activation(g, _to_channels_last(g, y, 4, layer.name), c.activation, layer.name)


def _pool(op_type: str) -> Converter:
    def convert(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
        c = layer.config
        rank = len(shapes[0])
        spatial = rank - 2
        size = _tuple(c.pool_size, spatial)
        strides = _tuple(c.strides if c.strides is not None else c.pool_size, spatial)
        pads = _pads(c, shapes[0], size, strides, (1,) * spatial)
        x = _to_channels_first(g, xs[0], rank, layer.name)
        y = g.op(
            op_type, [x], layer.name, kernel_shape=list(size), strides=list(strides), pads=pads
        )
        return _to_channels_last(g, y, rank, layer.name)

    return convert


for _dims in ("1D", "2D", "3D"):
    converter(f"MaxPooling{_dims}")(_pool("MaxPool"))
    converter(f"AveragePooling{_dims}")(_pool("AveragePool"))


def _global_pool(op_type: str) -> Converter:
    def convert(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
        axes = list(range(1, len(shapes[0]) - 1))
        return g.op(op_type, xs, layer.name, axes=axes, keepdims=int(layer.config.keepdims))

    return convert


for _dims in ("1D", "2D"):
    converter(f"GlobalMaxPooling{_dims}")(_global_pool("ReduceMax"))
    converter(f"GlobalAveragePooling{_dims}")(_global_pool("ReduceMean"))


@converter("Activation")
def _activation_layer(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    return activation(g, xs[0], layer.config.activation, layer.name)


@converter("ReLU")
def _relu_layer(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    """Relu when plain; else `x > threshold ? x : negative_slope * (x - threshold)`, capped
    at max_value, as engine.activations computes it."""
    c, stem = layer.config, layer.name
    if layer.is_plain_relu:
        return g.op("Relu", xs, stem)
    threshold = g.const("threshold", c.threshold)
    above = g.op("Greater", [xs[0], threshold], stem)
    shifted = g.op("Sub", [xs[0], threshold], stem)
    leak = g.op("Mul", [shifted, g.const("negative_slope", c.negative_slope)], stem)
    y = g.op("Where", [above, xs[0], leak], stem)
    if c.max_value is None:
        return y
    return g.op("Min", [y, g.const("max_value", c.max_value)], stem)


@converter("LeakyReLU")
def _leaky_relu_layer(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    return g.op("LeakyRelu", xs, layer.name, alpha=layer.config.negative_slope)


@converter("ELU")
def _elu_layer(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    return g.op("Elu", xs, layer.name, alpha=layer.config.alpha)


@converter("Softmax")
def _softmax_layer(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    axis, stem = layer.config.axis, layer.name
    if isinstance(axis, int) or len(axis) == 1:
        return g.op("Softmax", xs, stem, axis=axis if isinstance(axis, int) else axis[0])
    total = g.op("ReduceLogSumExp", xs, stem, axes=list(axis), keepdims=1)
    return g.op("Exp", [g.op("Sub", [xs[0], total], stem)], stem)


@converter("PReLU")
def _prelu_layer(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    alpha = g.const("alpha", _params(layer)["alpha"])
    return g.op("PRelu", [xs[0], alpha], layer.name)


@converter("Dropout", "Identity", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D")
def _identity(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    return g.op("Identity", xs, layer.name)


@converter("Flatten")
def _flatten(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    return g.op("Flatten", xs, layer.name, axis=1)


@converter("Reshape")
def _reshape(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    target = g.ints("shape", [0, *layer.config.target_shape])
    return g.op("Reshape", [xs[0], target], layer.name)


@converter("Permute")
def _permute(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    return g.op("Transpose", xs, layer.name, perm=[0, *layer.config.dims])


@converter("RepeatVector")
def _repeat(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    x = g.op("Unsqueeze", [xs[0], g.ints("axes", [1])], layer.name)
    return g.op("Tile", [x, g.ints("repeats", [1, layer.config.n, 1])], layer.name)


@converter("Rescaling")
def _rescaling(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    c = layer.config
    y = g.op("Mul", [xs[0], g.const("scale", c.scale)], layer.name)
    return g.op("Add", [y, g.const("offset", c.offset)], layer.name)


def _broadcast_shape(rank: int, axis: int, size: int) -> list[int]:
    shape = [1] * rank
    shape[axis] = size
    return shape


@converter("BatchNormalization")
def _batch_norm(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    c, p = layer.config, _params(layer)
    rank = len(shapes[0])
    axis = c.axis % rank
    inv = 1.0 / np.sqrt(p["moving_variance"].astype(np.float64) + c.epsilon)
    scale = inv * p.get("gamma", 1.0)
    shift = p.get("beta", 0.0) - p["moving_mean"] * scale
    shape = _broadcast_shape(rank, axis, int(scale.size))
    y = g.op("Mul", [xs[0], g.const("scale", scale.reshape(shape))], layer.name)
    return g.op("Add", [y, g.const("shift", np.reshape(shift, shape))], layer.name)


@converter("LayerNormalization")
def _layer_norm(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    c, p = layer.config, _params(layer)
    rank = len(shapes[0])
    if c.axis not in (-1, rank - 1, [-1], [rank - 1]):
        raise ExportError(f"layer {layer.name!r}: LayerNormalization exports only with axis -1")
    width = int(shapes[0][-1] or 0)
    gamma = g.const("gamma", p.get("gamma", np.ones(width)))
    beta = g.const("beta", p.get("beta", np.zeros(width)))
    return g.op("LayerNormalization", [xs[0], gamma, beta], layer.name, axis=-1, epsilon=c.epsilon)


@converter("Normalization")
def _normalization(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    like = np.zeros([1 if s is None else s for s in (1, *shapes[0][1:])], dtype=g.dtype)
    mean, std = layer._stats([w.numpy() for w in layer.weights], like)
    mean_name, std_name = g.const("mean", mean), g.const("std", std)
    if layer.config.invert:
        return g.op("Add", [g.op("Mul", [xs[0], std_name], layer.name), mean_name], layer.name)
    return g.op("Div", [g.op("Sub", [xs[0], mean_name], layer.name), std_name], layer.name)


def _fold(op_type: str) -> Converter:
    return lambda g, layer, xs, shapes: g.op(op_type, xs, layer.name)


for _type, _op in (("Add", "Sum"), ("Average", "Mean"), ("Maximum", "Max"), ("Minimum", "Min")):
    converter(_type)(_fold(_op))
converter("Subtract")(lambda g, layer, xs, shapes: g.op("Sub", xs, layer.name))


@converter("Multiply")
def _multiply(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    y = xs[0]
    for x in xs[1:]:
        y = g.op("Mul", [y, x], layer.name)
    return y


@converter("Concatenate")
def _concatenate(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    return g.op("Concat", xs, layer.name, axis=layer.config.axis)


@converter("Dot")
def _dot(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    c = layer.config
    if any(len(s) != 2 for s in shapes) or c.axes not in (1, -1, (1, 1), (-1, -1)):
        raise ExportError(f"layer {layer.name!r}: Dot exports only for rank-2 inputs on axis 1")
    a, b = xs
    if c.normalize:
        a, b = (g.op("LpNormalization", [x], layer.name, axis=1, p=2) for x in xs)
    return g.op("ReduceSum", [g.op("Mul", [a, b], layer.name), g.ints("axes", [1])], layer.name)


# ----- recurrent layers --------------------------------------------------------------------
_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [0, 1, 2], "SimpleRNN": [0]}
_RNN_OPS = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}


def _gates(matrix: np.ndarray, order: list[int]) -> np.ndarray:
    """Reorder Keras's gate blocks along the last axis, then put units first (ONNX's layout)."""
    blocks = np.split(matrix, len(order), axis=-1)
    return np.concatenate([blocks[i] for i in order], axis=-1).T


# The activations each ONNX cell takes, from the Keras config fields.
_CELL_FIELDS = {
    "SimpleRNN": ("activation",),
    "GRU": ("recurrent_activation", "activation"),
    "LSTM": ("recurrent_activation", "activation", "activation"),
}


def _cell_names(layer: Any) -> list[str]:
    specs = [getattr(layer.config, f) for f in _CELL_FIELDS[layer.type_name]]
    names = []
    for spec in specs:
        name, args = _activation_parts(spec, layer.name)
        if name not in _CELL_ACTIVATIONS or args:
            raise ExportError(f"layer {layer.name!r}: activation {name!r} has no ONNX cell form")
        names.append(_CELL_ACTIVATIONS[name])
    return names


def _rnn_biases(p: dict[str, np.ndarray], order: list[int], units: int) -> np.ndarray:
    width = len(order) * units
    bias = p.get("bias", np.zeros(width, p["kernel"].dtype))
    if bias.ndim == 2:  # GRU reset_after: input bias and recurrent bias
        input_bias, recurrent_bias = bias[0], bias[1]
    else:
        input_bias, recurrent_bias = bias, np.zeros_like(bias)
    reordered = [_gates(b[None, :], order).T[0] for b in (input_bias, recurrent_bias)]
    return np.concatenate(reordered)[None, :]


def _reverse_time(g: GraphBuilder, x: str, axis: int, stem: str) -> str:
    ends = g.ints("end", [-(2**62)])
    starts, axes, steps = g.ints("start", [-1]), g.ints("axis", [axis]), g.ints("step", [-1])
    return g.op("Slice", [x, starts, ends, axes, steps], stem)


@converter("SimpleRNN", "LSTM", "GRU")
def _recurrent(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    c, p = layer.config, _params(layer)
    if c.stateful:
        raise ExportError(f"layer {layer.name!r}: stateful recurrent layers cannot be exported")
    order = _GATE_ORDER[layer.type_name]
    x = g.op("Transpose", xs, layer.name, perm=[1, 0, 2])
    if c.go_backwards:
        x = _reverse_time(g, x, 0, layer.name)
    attrs: dict[str, Any] = {"hidden_size": c.units, "activations": _cell_names(layer)}
    if layer.type_name == "GRU":
        attrs["linear_before_reset"] = int(c.reset_after)
    inputs = [
        x,
        g.const("W", _gates(p["kernel"], order)[None]),
        g.const("R", _gates(p["recurrent_kernel"], order)[None]),
        g.const("B", _rnn_biases(p, order, c.units)),
    ]
    y, y_h = g.op_n(_RNN_OPS[layer.type_name], inputs, layer.name, 2, **attrs)
    if c.return_sequences:
        seq = g.op("Squeeze", [y, g.ints("axes", [1])], layer.name)
        return g.op("Transpose", [seq], layer.name, perm=[1, 0, 2])
    return g.op("Squeeze", [y_h, g.ints("axes", [0])], layer.name)


@dataclass
class _Part:
    """A wrapped layer seen as a layer of its own, with the wrapper's weights it owns."""

    type_name: str
    name: str
    config: Any
    weights: list[Any]


_BIDIRECTIONAL_MERGES: dict[str, Callable[[GraphBuilder, str, str, str], str]] = {
    "concat": lambda g, a, b, stem: g.op("Concat", [a, b], stem, axis=-1),
    "sum": lambda g, a, b, stem: g.op("Add", [a, b], stem),
    "mul": lambda g, a, b, stem: g.op("Mul", [a, b], stem),
    "ave": lambda g, a, b, stem: g.op("Mul", [g.op("Add", [a, b], stem), g.const("h", 0.5)], stem),
}


@converter("Bidirectional")
def _bidirectional(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    mode = layer.config.merge_mode
    if mode not in _BIDIRECTIONAL_MERGES:
        raise ExportError(
            f"layer {layer.name!r}: Bidirectional merge_mode {mode!r} cannot be exported"
        )
    weights = layer.weights
    half = len(weights) // 2
    outs = []
    for inner, part in (
        (layer.forward_layer, weights[:half]),
        (layer.backward_layer, weights[half:]),
    ):
        proxy = _Part(inner.type_name, f"{layer.name}/{inner.name}", inner.config, part)
        outs.append(CONVERTERS[inner.type_name](g, proxy, xs, shapes))
    if layer.config.layer.get("return_sequences", False):
        outs[1] = _reverse_time(g, outs[1], 1, layer.name)
    return _BIDIRECTIONAL_MERGES[mode](g, outs[0], outs[1], layer.name)


@converter("TimeDistributed")
def _time_distributed(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    inner = layer.layer
    convert = CONVERTERS.get(inner.type_name)
    steps, rest = shapes[0][1], [d for d in shapes[0][2:] if d is not None]
    if convert is None or steps is None or len(rest) != len(shapes[0]) - 2:
        raise ExportError(
            f"layer {layer.name!r}: TimeDistributed({inner.type_name}) needs a converter for "
            "the inner layer and known sizes after the batch"
        )
    folded = g.op("Reshape", [xs[0], g.ints("shape", [-1, *rest])], layer.name)
    proxy = _Part(inner.type_name, layer.name, inner.config, layer.weights)
    y = convert(g, proxy, [folded], [(None, *rest)])
    out_rest = layer.compute_output_shape(shapes[0])[2:]
    return g.op("Reshape", [y, g.ints("shape", [-1, steps, *out_rest])], layer.name)


@converter("Embedding")
def _embedding(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    if layer.config.mask_zero:
        raise ExportError(f"layer {layer.name!r}: Embedding with mask_zero cannot be exported")
    ids = g.op("Cast", xs, layer.name, to=g.onnx.TensorProto.INT64)
    return g.op("Gather", [g.const("embeddings", _params(layer)["embeddings"]), ids], layer.name)


@converter("EinsumDense")
def _einsum_dense(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    p, params = layer._plan(shapes[0]), _params(layer)
    y = g.op(
        "Einsum",
        [xs[0], g.const("kernel", params["kernel"])],
        layer.name,
        equation=f"{p.x},{p.w}->{p.y}",
    )
    if "bias" in params:
        y = g.op("Add", [y, g.const("bias", params["bias"])], layer.name)
    return activation(g, y, layer.config.activation, layer.name)


@converter("PositionEmbedding")
def _position_embedding(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    steps = shapes[0][-2]
    if steps is None:
        raise ExportError(f"layer {layer.name!r}: PositionEmbedding needs a fixed sequence length")
    table = g.const("embeddings", layer.weights[0].numpy()[:steps])
    return g.op("Expand", [table, g.op("Shape", xs, layer.name)], layer.name)


def _heads(
    g: GraphBuilder, x: str, kernel: np.ndarray, bias: Any, perm: list[int], stem: str
) -> str:
    """Project (B, L, d) with an EinsumDense kernel (d, heads, dim) and split the heads."""
    y = g.op("MatMul", [x, g.const("kernel", kernel.reshape(kernel.shape[0], -1))], stem)
    if bias is not None:
        y = g.op("Add", [y, g.const("bias", bias.reshape(-1))], stem)
    y = g.op("Reshape", [y, g.ints("shape", [0, 0, *kernel.shape[1:]])], stem)
    return g.op("Transpose", [y], stem, perm=perm)


@converter("MultiHeadAttention", "GroupQueryAttention")
def _multi_head_attention(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    c = layer.config
    if len(shapes[0]) != 3 or getattr(c, "attention_axes", None) not in (None, 1, -2, (1,), (-2,)):
        raise ExportError(f"layer {layer.name!r}: {layer.type_name} exports on rank-3 inputs")
    heads, kv_heads, key_dim, _ = layer._dims()
    w = {v.name.split("/", 1)[1]: v.numpy() for v in layer.weights}
    for name in ("key/kernel", "key/bias", "value/kernel", "value/bias"):
        if name in w:  # grouped heads: each key/value head serves heads // kv_heads queries
            w[name] = np.repeat(w[name], heads // kv_heads, axis=-2)
    b = {k: w.get(f"{k}/bias") for k in ("query", "key", "value", "attention_output")}
    stem = layer.name
    key_in = xs[2] if len(xs) > 2 else xs[1]
    q = _heads(g, xs[0], w["query/kernel"], b["query"], [0, 2, 1, 3], stem)
    q = g.op("Mul", [q, g.const("scale", 1.0 / math.sqrt(key_dim))], stem)
    k = _heads(g, key_in, w["key/kernel"], b["key"], [0, 2, 3, 1], stem)
    v = _heads(g, xs[1], w["value/kernel"], b["value"], [0, 2, 1, 3], stem)
    scores = g.op("MatMul", [q, k], stem)
    mask = _attention_mask(g, layer, xs, shapes)
    if mask is not None:
        scores = g.op("Where", [mask, scores, g.const("large_negative", -1e9)], stem)
    probs = g.op("Softmax", [scores], stem, axis=-1)
    if mask is not None:
        probs = g.op("Where", [mask, probs, g.const("zero", 0.0)], stem)
    y = g.op("Transpose", [g.op("MatMul", [probs, v], stem)], stem, perm=[0, 2, 1, 3])
    out_kernel = w["attention_output/kernel"]
    rows = out_kernel.shape[0] * out_kernel.shape[1]
    y = g.op("Reshape", [y, g.ints("shape", [0, 0, rows])], stem)
    y = g.op("MatMul", [y, g.const("kernel", out_kernel.reshape(rows, -1))], stem)
    if b["attention_output"] is not None:
        y = g.op("Add", [y, g.const("bias", b["attention_output"].reshape(-1))], stem)
    if out_kernel.ndim > 3:
        y = g.op("Reshape", [y, g.ints("shape", [0, 0, *out_kernel.shape[2:]])], stem)
    return y


def _attention_mask(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> Any:
    """The boolean (B or 1, 1, T, S) mask: an attention_mask input, and the causal and
    sliding-window bands (constants, so they need fixed lengths)."""
    from engine.kernels.attention import band_mask, causal_mask

    c = layer.config
    parts = []
    if len(xs) > 3:
        explicit = g.op("Cast", [xs[3]], layer.name, to=g.onnx.TensorProto.BOOL)
        parts.append(g.op("Unsqueeze", [explicit, g.ints("axes", [1])], layer.name))
    t, s = shapes[0][1], shapes[1][1]
    if c.use_causal_mask or c.sliding_window:
        if t is None or s is None:
            raise ExportError(f"layer {layer.name!r}: a causal mask needs fixed sequence lengths")
        if c.use_causal_mask:
            parts.append(g.const("causal", causal_mask(np, t, s), np.bool_))
        if c.sliding_window:
            parts.append(g.const("window", band_mask(np, t, s, c.sliding_window), np.bool_))
    if not parts:
        return None
    mask = parts[0]
    for p in parts[1:]:
        mask = g.op("And", [mask, p], layer.name)
    return mask


@converter("Attention", "AdditiveAttention")
def _attention(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    """Keras's single-head attention: scores, the causal band (1e9 subtracted), softmax, @ v."""
    c, p = layer.config, _params(layer)
    q, v = xs[0], xs[1]
    k = xs[2] if len(xs) > 2 else v
    stem = layer.name
    if getattr(c, "score_mode", "additive") == "dot":
        scores = g.op("MatMul", [q, g.op("Transpose", [k], stem, perm=[0, 2, 1])], stem)
        if "scale" in p:
            scores = g.op("Mul", [scores, g.const("scale", p["scale"])], stem)
    else:
        pairs = g.op(
            "Add",
            [
                g.op("Unsqueeze", [q, g.ints("axes", [2])], stem),
                g.op("Unsqueeze", [k, g.ints("axes", [1])], stem),
            ],
            stem,
        )
        additive = layer.type_name == "AdditiveAttention"
        if "scale" in p and not additive:
            pairs = g.op("Mul", [pairs, g.const("scale", p["scale"])], stem)
        t = g.op("Tanh", [pairs], stem)
        if "scale" in p and additive:
            t = g.op("Mul", [t, g.const("scale", p["scale"])], stem)
        scores = g.op("ReduceSum", [t, g.ints("axes", [-1])], stem, keepdims=0)
        if "concat_score_weight" in p:
            scores = g.op("Mul", [scores, g.const("weight", p["concat_score_weight"])], stem)
    if c.use_causal_mask:
        t_len, s_len = shapes[0][1], shapes[1][1]
        if t_len is None or s_len is None:
            raise ExportError(f"layer {stem!r}: a causal mask needs fixed sequence lengths")
        from engine.kernels.attention import causal_mask

        shifted = g.op("Sub", [scores, g.const("offset", 1e9)], stem)
        band = g.const("causal", causal_mask(np, t_len, s_len)[0], np.bool_)
        scores = g.op("Where", [band, scores, shifted], stem)
    return g.op("MatMul", [g.op("Softmax", [scores], stem, axis=-1), v], stem)


@converter("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D")
def _border(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    amounts = layer.amounts()
    if layer.sign > 0:
        before = [0, *(a for a, _ in amounts), 0]
        after = [0, *(b for _, b in amounts), 0]
        return g.op("Pad", [xs[0], g.ints("pads", before + after)], layer.name)
    axes = list(range(1, len(amounts) + 1))
    starts = [a for a, _ in amounts]
    ends = [-b if b else np.iinfo(np.int64).max for _, b in amounts]
    inputs = [xs[0], g.ints("starts", starts), g.ints("ends", ends), g.ints("axes", axes)]
    return g.op("Slice", inputs, layer.name)


@converter("UpSampling1D", "UpSampling2D")
def _upsampling(g: GraphBuilder, layer: Any, xs: list[str], shapes: list[Shape]) -> str:
    scales = g.const("scales", [1.0, *layer._factors(), 1.0], np.float32)
    return g.op(
        "Resize",
        [xs[0], "", scales],
        layer.name,
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )


# ----- the whole model ---------------------------------------------------------------------
def _value_info(onnx: Any, name: str, shape: Shape, dtype: str) -> Any:
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    dims = ["batch" if i == 0 or d is None else d for i, d in enumerate(shape)]
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def export_model(model: Any, opset: int = OPSET) -> Any:
    """The model as an `onnx.ModelProto` (checked); inputs and outputs keep the model's names."""
    if opset not in SUPPORTED_OPSETS:
        first, last = SUPPORTED_OPSETS[0], SUPPORTED_OPSETS[-1]
        raise ExportError(
            f"ONNX opset {opset} is not supported; use an opset from {first} to {last}"
        )
    onnx = _onnx()
    graph = model.graph
    g = GraphBuilder(getattr(model, "dtype", "float32"))
    slots: dict[int, str] = {}
    for slot, name in zip(graph.input_slots, model.input_names, strict=True):
        slots[slot] = name
    for call in graph.calls:
        layer = call.layer
        convert = CONVERTERS.get(layer.type_name)
        if convert is None:
            raise ExportError(
                f"layer {layer.name!r} ({layer.type_name}) has no ONNX export; exportable types: "
                + ", ".join(sorted(CONVERTERS))
            )
        shapes = [graph.slot_shapes[s] for s in call.inputs]
        slots[call.output] = convert(g, layer, [slots[s] for s in call.inputs], shapes)
    outputs = []
    for slot, name in zip(graph.output_slots, model.output_names, strict=True):
        g.nodes.append(onnx.helper.make_node("Identity", [slots[slot]], [name]))
        outputs.append(_value_info(onnx, name, graph.slot_shapes[slot], g.dtype.name))
    inputs = [
        _value_info(onnx, name, graph.slot_shapes[slot], t.dtype)
        for slot, name, t in zip(graph.input_slots, model.input_names, model.inputs, strict=True)
    ]
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(g.nodes, str(model.name), inputs, outputs, g.initializers),
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name="modelspec",
    )
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model_or_path: Any, output: str | os.PathLike[str], opset: int = OPSET) -> Path:
    """Write a model (or a saved artifact, by path) as an ONNX file, atomically."""
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        model = load_model(model_or_path)
    proto = export_model(model, opset)
    target = Path(output)
    atomic_write_bytes(target, proto.SerializeToString())
    return target
