"""The table of Keras layers modelspec reads and writes: one row per Keras class.

A row names the spec's layer type and where Keras 3 keeps the layer's weights inside
`model.weights.h5`: under `layers/<layer>/vars/0..n`, then under each child group in the row's
order (an RNN's `cell`, a Bidirectional's `forward_layer` then `backward_layer`, a
TimeDistributed's `layer`). Weight arrays come in Keras's order, which is the spec's order too.
A layer added to the engine with Keras's name and arguments needs one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Predicate = Callable[[Any, Mapping[str, Any]], bool]


def _always(value: Any, config: Mapping[str, Any]) -> bool:
    return True


def _one_of(*values: Any) -> Predicate:
    return lambda value, config: value in values


def _unless_sequences(value: Any, config: Mapping[str, Any]) -> bool:
    """zero_output_for_mask only changes masked steps of a returned sequence."""
    return not value or not config.get("return_sequences")


# Keras arguments with no spec field, and the values under which dropping them changes nothing.
IGNORABLE: dict[str, Predicate] = {
    "unroll": _always,  # speed only
    "implementation": _always,
    "seed": _always,  # an RNN's dropout seed: training noise, not the model
    "time_major": _one_of(False),
    "return_state": _one_of(False),
    "zero_output_for_mask": _unless_sequences,
    "quantization_config": _one_of(None),
    "lora_rank": _one_of(None),
    "lora_alpha": _always,
    "synchronized": _one_of(False),
    "renorm": _one_of(False),
    "renorm_clipping": _one_of(None),
    "renorm_momentum": _always,
    "rms_scaling": _one_of(False),
    "data_format": _one_of("channels_last", None),
    "input_length": _always,  # Keras 2's Embedding, checked by the input shape instead
    "autocast": _one_of(True),
    "sparse": _one_of(False),
    "ragged": _one_of(False),
    "optional": _one_of(False),
    "activity_regularizer": _one_of(None),
    "use_gate": _one_of(False),  # MultiHeadAttention's gated variant
}


@dataclass(frozen=True)
class LayerRow:
    """A Keras class: the spec type, the h5 child groups holding more weights, nested layers."""

    keras: str
    spec: str
    # (h5 group, config key of the layer it holds, or None for a sublayer Keras builds itself)
    children: tuple[tuple[str, str | None], ...] = ()
    nested: tuple[str, ...] = ()  # config keys holding a whole layer config
    dropped: Mapping[str, Predicate] = field(default_factory=dict)
    nested_set_by_keras: tuple[str, ...] = ()  # nested layers' arguments the wrapper sets
    call_arguments: tuple[str, ...] = ()  # Keras's call arguments the spec keeps in the entry
    keras_omits: tuple[str, ...] = ()  # spec arguments the Keras class's constructor refuses
    tensor_arguments: tuple[str, ...] = ()  # a call on several tensors, in the spec's order
    positional_tensors: int = 0  # how many of them Keras takes by position
    python_class: str | None = None  # Keras's class, where it is saved under another name
    renamed: Mapping[str, str] = field(default_factory=dict)  # Keras 2's name -> Keras 3's


def _same(*names: str, **kwargs: Any) -> list[LayerRow]:
    return [LayerRow(n, n, **kwargs) for n in names]


_CELL = (("cell", None),)


_NOT_MIRRORED = ("name", "go_backwards", "shared_object_id", "zero_output_for_mask")


def _without(value: Any) -> Any:
    """A serialized layer without what legitimately differs between its two directions."""
    if isinstance(value, Mapping):
        return {k: _without(v) for k, v in value.items() if k not in _NOT_MIRRORED}
    return value


def _mirrors_forward(value: Any, config: Mapping[str, Any]) -> bool:
    """A Bidirectional's backward layer that is its forward layer run backwards."""
    return not value or _without(value) == _without(config.get("layer"))


ROWS: list[LayerRow] = [
    *_same("Dense", "Activation", "Dropout", "Flatten", "Reshape", "Permute", "RepeatVector"),
    *_same("ReLU", "Softmax", "ELU", "PReLU"),
    LayerRow("LeakyReLU", "LeakyReLU", renamed={"alpha": "negative_slope"}),
    *_same("Conv1D", "Conv2D", "Conv3D"),
    *_same("MaxPooling1D", "MaxPooling2D", "MaxPooling3D"),
    *_same("AveragePooling1D", "AveragePooling2D", "AveragePooling3D"),
    *_same("GlobalMaxPooling1D", "GlobalMaxPooling2D"),
    *_same("GlobalAveragePooling1D", "GlobalAveragePooling2D"),
    *_same("BatchNormalization", "LayerNormalization", "Normalization", "Rescaling"),
    *_same("Embedding", "Masking"),
    *_same("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"),
    *_same("SimpleRNN", "LSTM", "GRU", children=_CELL),
    LayerRow(
        "Bidirectional",
        "Bidirectional",
        children=(("forward_layer", "layer"), ("backward_layer", "backward_layer")),
        nested=("layer",),
        dropped={"backward_layer": _mirrors_forward},
        nested_set_by_keras=("zero_output_for_mask",),  # True for sequences, as Keras does
    ),
    LayerRow(
        "TimeDistributed", "TimeDistributed", children=(("layer", "layer"),), nested=("layer",)
    ),
    *_same("UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D"),
    *_same("Cropping1D", "Cropping2D", "Identity"),
    *_same("GaussianNoise"),
    *_same("SpatialDropout1D", "SpatialDropout2D", keras_omits=("trainable",)),
    *_same("DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose"),
    *_same("Attention", "AdditiveAttention", call_arguments=("use_causal_mask",)),
    *_same("EinsumDense"),
    *[
        LayerRow(
            keras,
            spec,
            children=tuple(
                (f"{stem}{part}_dense", None) for part in ("query", "key", "value", "output")
            ),
            call_arguments=("use_causal_mask",),
            tensor_arguments=("query", "value", "key", "attention_mask"),
            positional_tensors=2,
            python_class=python_class,
        )
        for keras, spec, stem, python_class in (
            ("MultiHeadAttention", "MultiHeadAttention", "", None),
            ("GroupQueryAttention", "GroupQueryAttention", "_", "GroupedQueryAttention"),
        )
    ],
]
# Spec layer types with no row, and why: an import or export of one is refused by name.
NO_KERAS_EQUIVALENT = {
    "Input": "models carry their inputs as Keras's InputLayer, written by the graph itself",
    "Lambda": "Keras's Lambda holds Python bytecode, which safe mode refuses to load",
    "PositionEmbedding": "KerasHub's layer, not Keras's: no class for safe mode to load",
}
BY_KERAS: dict[str, LayerRow] = {row.keras: row for row in ROWS}
BY_SPEC: dict[str, LayerRow] = {row.spec: row for row in ROWS}
# Keras 2 / tf.keras class names that are today's classes under another name.
KERAS_ALIASES = {
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "MaxPool2D": "MaxPooling2D",
}


def weights_class(keras_class: str) -> str:
    """The class name Keras files a layer's weight group under (its Python class's name)."""
    row = row_for(keras_class)
    return (row.python_class if row else None) or keras_class


def row_for(keras_class: str) -> LayerRow | None:
    """The row of a Keras class name (Keras 2 aliases included), or None."""
    return BY_KERAS.get(KERAS_ALIASES.get(keras_class, keras_class))
