"""Write tests/fixtures/keras_attention.npz: Keras 3's own MultiHeadAttention numbers.

Run once with Keras in a scratch venv (never a project dependency):
`KERAS_BACKEND=jax /work/kerasvenv/bin/python scripts/keras_attention_reference.py`.
For each case it records the output shape and parameter count Keras reports, and the output
of the layer on seeded inputs with seeded weights (set through `set_weights`, in Keras's weight
order), so the tests can compare our forward pass with Keras's without Keras installed.
"""

from __future__ import annotations

import keras
import keras_reference
import numpy as np

CASES = [
    # name, layer kwargs, query shape, value shape, key shape or None, call kwargs
    ("self", {"num_heads": 2, "key_dim": 2}, (8, 16), (8, 16), None, {}),
    ("cross_key", {"num_heads": 3, "key_dim": 4, "value_dim": 5}, (6, 7), (5, 9), (5, 3), {}),
    (
        "no_bias_out",
        {"num_heads": 2, "key_dim": 3, "use_bias": False, "output_shape": 4},
        (5, 6),
        (5, 6),
        None,
        {},
    ),
    ("out_tuple", {"num_heads": 2, "key_dim": 3, "output_shape": (2, 3)}, (4, 5), (6, 5), None, {}),
    (
        "axes",
        {"num_heads": 2, "key_dim": 3, "attention_axes": (2, 3)},
        (3, 4, 5, 6),
        (3, 4, 5, 6),
        None,
        {},
    ),
    ("causal", {"num_heads": 2, "key_dim": 4}, (6, 8), (6, 8), None, {"use_causal_mask": True}),
    ("attention_mask", {"num_heads": 2, "key_dim": 4}, (5, 8), (7, 8), None, {"mask": True}),
    ("window", {"num_heads": 2, "key_dim": 4, "sliding_window": 2}, (6, 8), (6, 8), None, {}),
]


SIMPLE = [
    # name, class, layer kwargs, query, value, key or None, masks, causal
    ("dot", "Attention", {}, (5, 4), (6, 3), (6, 4), False, False),
    ("dot_scale_masked", "Attention", {"use_scale": True}, (5, 4), (6, 4), None, True, False),
    (
        "concat_scale_causal",
        "Attention",
        {"use_scale": True, "score_mode": "concat"},
        (5, 4),
        (5, 3),
        (5, 4),
        False,
        True,
    ),
    ("additive", "AdditiveAttention", {}, (5, 4), (6, 4), None, True, False),
    (
        "additive_no_scale",
        "AdditiveAttention",
        {"use_scale": False},
        (5, 4),
        (6, 2),
        (6, 4),
        False,
        True,
    ),
]


def simple(out: dict[str, np.ndarray], meta: dict[str, object], rng: np.random.Generator) -> None:
    """Attention and AdditiveAttention with seeded weights, Keras masks and causal masks."""
    for name, cls, kwargs, q_shape, v_shape, k_shape, masked, causal in SIMPLE:
        layer = getattr(keras.layers, cls)(**kwargs)
        arrays = [rng.standard_normal((2, *s)).astype("float32") for s in (q_shape, v_shape)]
        if k_shape is not None:
            arrays.append(rng.standard_normal((2, *k_shape)).astype("float32"))
        call: dict[str, object] = {"use_causal_mask": causal, "return_attention_scores": True}
        if masked:
            q_mask = np.ones((2, q_shape[0]), bool)
            q_mask[1, -2:] = False
            v_mask = np.ones((2, v_shape[0]), bool)
            v_mask[0, -3:] = False
            call["mask"] = [q_mask, v_mask]
            out[f"{name}/query_mask"], out[f"{name}/value_mask"] = q_mask, v_mask
        layer(arrays, **call)
        weights = keras_reference.seeded_weights(layer, rng, shift=1.0)
        y, scores = (np.asarray(a) for a in layer(arrays, **call))
        for i, a in enumerate(arrays):
            out[f"{name}/input{i}"] = a
        keras_reference.store_weights(out, name, weights)
        out[f"{name}/output"], out[f"{name}/scores"] = y, scores
        meta[name] = {
            "type": cls,
            "config": {**kwargs, "use_causal_mask": causal},
            "params": int(layer.count_params()),
            "weights": [w.path.split("/")[-1] for w in layer.weights],
            "output_shape": list(y.shape[1:]),
        }


GROUPED = [
    # name, layer kwargs, query, value, key or None, call kwargs
    (
        "gqa",
        {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2},
        (5, 8),
        (6, 8),
        None,
        {},
    ),
    (
        "gqa_causal_no_bias",
        {"head_dim": 2, "num_query_heads": 6, "num_key_value_heads": 3, "use_bias": False},
        (5, 7),
        (5, 4),
        (5, 3),
        {"use_causal_mask": True},
    ),
    (
        "gqa_mask_single_kv",
        {"head_dim": 4, "num_query_heads": 3, "num_key_value_heads": 1},
        (4, 6),
        (5, 6),
        None,
        {"mask": True},
    ),
]


def grouped(out: dict[str, np.ndarray], meta: dict[str, object], rng: np.random.Generator) -> None:
    """GroupQueryAttention with seeded weights (and a causal or an explicit mask)."""
    for name, kwargs, q_shape, v_shape, k_shape, call in GROUPED:
        layer = keras.layers.GroupQueryAttention(**kwargs)
        q = rng.standard_normal((2, *q_shape)).astype("float32")
        v = rng.standard_normal((2, *v_shape)).astype("float32")
        args: dict[str, object] = {"query": q, "value": v, "return_attention_scores": True}
        if k_shape is not None:
            args["key"] = out[f"{name}/key"] = rng.standard_normal((2, *k_shape)).astype("float32")
        if call.get("use_causal_mask"):
            args["use_causal_mask"] = True
        if call.get("mask"):
            mask = rng.random((2, q_shape[0], v_shape[0])) > 0.3
            mask[:, :, 0] = True
            args["attention_mask"] = out[f"{name}/attention_mask"] = mask
        layer(**args)
        weights = keras_reference.seeded_weights(layer, rng)
        y, scores = (np.asarray(a) for a in layer(**args))
        out[f"{name}/query"], out[f"{name}/value"] = q, v
        keras_reference.store_weights(out, name, weights)
        out[f"{name}/output"], out[f"{name}/scores"] = y, scores
        meta[name] = {
            "config": kwargs,
            "call": call,
            "params": int(layer.count_params()),
            "weights": [w.path.split("/", 1)[1] for w in layer.weights],
            "output_shape": list(y.shape[1:]),
        }


def main() -> None:
    out: dict[str, np.ndarray] = {}
    meta = {}
    rng = np.random.default_rng(0)
    for name, kwargs, q_shape, v_shape, k_shape, call in CASES:
        layer = keras.layers.MultiHeadAttention(**kwargs)
        q = rng.standard_normal((2, *q_shape)).astype("float32")
        v = rng.standard_normal((2, *v_shape)).astype("float32")
        k = None if k_shape is None else rng.standard_normal((2, *k_shape)).astype("float32")
        args = {"query": q, "value": v}
        if k is not None:
            args["key"] = k
        if call.get("use_causal_mask"):
            args["use_causal_mask"] = True
        if call.get("mask"):
            mask = rng.random((2, q_shape[0], v_shape[0])) > 0.3
            mask[:, :, 0] = True
            args["attention_mask"] = mask
            out[f"{name}/attention_mask"] = mask
        # the explicit-scores path: Keras's fused path rejects value_dim != key_dim on JAX
        args["return_attention_scores"] = True
        layer(**args)
        weights = keras_reference.seeded_weights(layer, rng)
        y, scores = (np.asarray(a) for a in layer(**args))
        out[f"{name}/scores"] = scores
        out[f"{name}/query"] = q
        out[f"{name}/value"] = v
        if k is not None:
            out[f"{name}/key"] = k
        keras_reference.store_weights(out, name, weights)
        out[f"{name}/output"] = y
        meta[name] = {
            "config": keras_reference.plain(kwargs),
            "call": call,
            "params": int(layer.count_params()),
            "weights": [w.path for w in layer.weights],
            "output_shape": list(y.shape[1:]),
        }
    simple_meta: dict[str, object] = {}
    simple(out, simple_meta, rng)
    out["simple_meta"] = keras_reference.as_bytes(simple_meta)
    grouped_meta: dict[str, object] = {}
    grouped(out, grouped_meta, rng)
    out["grouped_meta"] = keras_reference.as_bytes(grouped_meta)
    out["meta"] = keras_reference.as_bytes(meta)
    shown = {**meta, **simple_meta, **grouped_meta}
    keras_reference.write(out, "tests/fixtures/keras_attention.npz", shown)


if __name__ == "__main__":
    main()
