"""MultiHeadAttention against two independent oracles: numbers Keras 3.15.1 computed once
(tests/fixtures/keras_attention.npz, from scripts/keras_attention_reference.py) and PyTorch's
nn.MultiheadAttention with the same weights, causal and padding masks included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import native
from engine.fused import gemm
from engine.kernels import attention as attention_kernels
from engine.kernels.attention import attention_probs
from engine.layers import registry
from engine.layers.base import CallContext

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

FIXTURE = Path(__file__).parent.parent / "fixtures" / "keras_attention.npz"


def _keras_cases() -> tuple[Any, dict[str, Any]]:
    data = np.load(FIXTURE)
    return data, json.loads(bytes(data["meta"]).decode())


DATA, META = _keras_cases()


GROUPED = json.loads(bytes(DATA["grouped_meta"]).decode())
PROJECTED = [("MultiHeadAttention", META, n) for n in sorted(META)] + [
    ("GroupQueryAttention", GROUPED, n) for n in sorted(GROUPED)
]


@pytest.mark.parametrize(("type_name", "table", "name"), PROJECTED, ids=[p[2] for p in PROJECTED])
def test_forward_equals_keras(type_name: str, table: dict[str, Any], name: str) -> None:
    case = table[name]
    config = {"type": type_name, **case["config"], **case["call"]}
    config.pop("mask", None)
    layer = registry.get(type_name).from_config(config)
    arrays = [DATA[f"{name}/query"], DATA[f"{name}/value"]]
    if f"{name}/key" in DATA:
        arrays.append(DATA[f"{name}/key"])
    if f"{name}/attention_mask" in DATA:
        arrays += [arrays[1], DATA[f"{name}/attention_mask"]][len(arrays) - 2 :]
    shapes = [(None, *a.shape[1:]) for a in arrays]
    assert list(layer.compute_output_shape(shapes)[1:]) == case["output_shape"]
    specs = layer.weight_specs(shapes)
    assert sum(s.size for s in specs) == case["params"]
    assert [s.name for s in specs] == ["/".join(w.split("/")[-2:]) for w in case["weights"]]
    weights = [DATA[f"{name}/weight{i}"] for i in range(len(specs))]
    out, cache = layer.forward(weights, arrays, CallContext())
    np.testing.assert_allclose(out, DATA[f"{name}/output"], rtol=1e-4, atol=1e-5)
    scores = attention_probs(cache[3]).reshape(DATA[f"{name}/scores"].shape)
    np.testing.assert_allclose(scores, DATA[f"{name}/scores"], rtol=1e-4, atol=1e-6)


def _torch_pair(embed: int, heads: int, use_bias: bool) -> tuple[Any, Any, list[np.ndarray]]:
    """Our layer and torch's, with the same float64 weights."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    key_dim = embed // heads
    layer = registry.get("MultiHeadAttention").from_config(
        {
            "type": "MultiHeadAttention",
            "num_heads": heads,
            "key_dim": key_dim,
            "use_bias": use_bias,
            "dtype": "float64",
        }
    )
    shapes = [(None, 5, embed), (None, 5, embed)]
    params = [rng.standard_normal(s.shape) * 0.4 for s in layer.weight_specs(shapes)]
    ref = torch.nn.MultiheadAttention(embed, heads, bias=use_bias, batch_first=True).double()
    step = 2 if use_bias else 1
    kernels = [params[i * step].reshape(embed, -1).T for i in range(3)]
    out_kernel = params[3 * step].reshape(-1, embed).T
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.from_numpy(np.concatenate(kernels)))
        ref.out_proj.weight.copy_(torch.from_numpy(out_kernel))
        if use_bias:
            biases = [params[i * 2 + 1].reshape(-1) for i in range(3)]
            ref.in_proj_bias.copy_(torch.from_numpy(np.concatenate(biases)))
            ref.out_proj.bias.copy_(torch.from_numpy(params[7]))
    return layer, ref, params


@pytest.mark.parametrize("mask", ["none", "causal", "padding", "both"])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("one_array", [True, False], ids=["packed", "separate"])
def test_matches_torch_multihead_attention(mask: str, use_bias: bool, one_array: bool) -> None:
    """Self-attention values and every gradient equal torch's (float64). One array in every
    role takes the packed projection, whose input gradient comes whole in the query's slot;
    an equal copy as the value takes the three projections, a gradient per slot."""
    torch = pytest.importorskip("torch")
    layer, ref, params = _torch_pair(8, 2, use_bias)
    if mask in ("causal", "both"):
        layer.config = layer.config.model_copy(update={"use_causal_mask": True})
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 8))
    valid = np.ones((3, 5), dtype=bool)
    if mask in ("padding", "both"):
        valid[1, 3:] = False
        valid[2, 4:] = False
    ctx = CallContext(mask=[valid, valid] if mask in ("padding", "both") else None)
    out, cache = layer.forward(params, [x, x if one_array else x.copy()], ctx)
    proj = rng.standard_normal(out.shape)
    grads = [np.empty_like(p) for p in params]
    gq, gv = layer.backward(params, cache, proj, grads, ctx)
    assert (gv is None) == one_array

    xt = torch.from_numpy(x).requires_grad_(True)
    kwargs: dict[str, Any] = {"need_weights": False}
    if mask in ("causal", "both"):
        kwargs["attn_mask"] = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
    if mask in ("padding", "both"):
        kwargs["key_padding_mask"] = torch.from_numpy(~valid)
    expected, _ = ref(xt, xt, xt, **kwargs)
    # Keras also masks padded query rows: their weights are all zero, so they give the bias
    rows = torch.from_numpy(valid)[..., None]
    expected = torch.where(rows, expected, ref.out_proj.bias if use_bias else 0.0 * expected)
    (expected * torch.from_numpy(proj)).sum().backward()
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(
        gq + (0 if gv is None else gv), xt.grad.numpy(), rtol=1e-8, atol=1e-10
    )
    torch_in = ref.in_proj_weight.grad.numpy()
    step = 2 if use_bias else 1
    for i in range(3):
        ours = grads[i * step].reshape(8, -1).T
        np.testing.assert_allclose(ours, torch_in[i * 8 : (i + 1) * 8], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        grads[3 * step].reshape(-1, 8).T, ref.out_proj.weight.grad.numpy(), rtol=1e-8, atol=1e-10
    )


SIMPLE = json.loads(bytes(DATA["simple_meta"]).decode())


@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_attention_and_additive_attention_equal_keras(name: str) -> None:
    case = SIMPLE[name]
    layer = registry.get(case["type"]).from_config({"type": case["type"], **case["config"]})
    arrays = [DATA[f"{name}/input{i}"] for i in range(3) if f"{name}/input{i}" in DATA]
    shapes = [(None, *a.shape[1:]) for a in arrays]
    assert list(layer.compute_output_shape(shapes)[1:]) == case["output_shape"]
    specs = layer.weight_specs(shapes)
    assert sum(s.size for s in specs) == case["params"]
    assert [s.name for s in specs] == case["weights"]
    weights = [DATA[f"{name}/weight{i}"] for i in range(len(specs))]
    mask = None
    if f"{name}/query_mask" in DATA:
        mask = [DATA[f"{name}/query_mask"], DATA[f"{name}/value_mask"], None][: len(arrays)]
    out, cache = layer.forward(weights, arrays, CallContext(mask=mask))
    np.testing.assert_allclose(out, DATA[f"{name}/output"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cache[5], DATA[f"{name}/scores"], rtol=1e-4, atol=1e-6)


def test_keras_style_calls_return_the_scores() -> None:
    """`layer([q, v], mask=[...], return_attention_scores=True)` and `mha(q, v, ...)`, as in
    Keras, give Keras's weights."""
    from engine.tensor import Tensor

    name = "dot_scale_masked"
    layer = registry.get("Attention").from_config({"type": "Attention", "use_scale": True})
    q, v = (Tensor(DATA[f"{name}/input{i}"]) for i in range(2))
    layer.build([(None, *q.shape[1:]), (None, *v.shape[1:])])
    layer.set_weights([DATA[f"{name}/weight0"]])
    masks = [DATA[f"{name}/query_mask"], DATA[f"{name}/value_mask"]]
    out, scores = layer([q, v], mask=masks, return_attention_scores=True)
    np.testing.assert_allclose(out.numpy(), DATA[f"{name}/output"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores.numpy(), DATA[f"{name}/scores"], rtol=1e-4, atol=1e-6)

    case = "causal"
    mha = registry.get("MultiHeadAttention").from_config(
        {"type": "MultiHeadAttention", **META[case]["config"]}
    )
    query, value = Tensor(DATA[f"{case}/query"]), Tensor(DATA[f"{case}/value"])
    mha.build([(None, *query.shape[1:])] * 2)
    mha.set_weights([DATA[f"{case}/weight{i}"] for i in range(8)])
    out, scores = mha(query, value, use_causal_mask=True, return_attention_scores=True)
    np.testing.assert_allclose(out.numpy(), DATA[f"{case}/output"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores.numpy(), DATA[f"{case}/scores"], rtol=1e-4, atol=1e-6)


def test_attention_with_every_key_masked_weighs_them_equally() -> None:
    """Keras's Attention subtracts 1e9 from masked scores instead of dropping them: in float32
    every score of a fully masked row becomes -1e9, so the weights are uniform, not zero."""
    rng = np.random.default_rng(4)
    q, v = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(2))
    value_mask = np.array([[True, False, True], [False, False, False]])
    layer = registry.get("Attention").from_config({"type": "Attention"})
    _, cache = layer.forward([], [q, v], CallContext(mask=[None, value_mask]))
    np.testing.assert_array_equal(cache[5][1], np.full((3, 3), 1 / 3, dtype=np.float32))
    assert np.all(cache[5][0][:, 1] == 0) and np.allclose(cache[5][0].sum(axis=-1), 1)


# The fused attention kernel (`engine/native/_attention.c`) against the NumPy chain it replaces
# and against PyTorch's float64 math. (name, batch, heads, T, S, key dim, value dim, mask,
# dropout rate). Tolerances: float32 against float32 1e-5 relative (the kernel scales the query
# before its product and reads the key transposed, so the last bits move); against float64
# 2e-5 relative.
FUSED_CASES = [
    ("w6", 3, 4, 128, 128, 32, 32, "none", 0.0),
    ("padding", 2, 2, 17, 17, 8, 8, "padding", 0.0),
    ("causal", 2, 3, 33, 33, 16, 16, "causal", 0.0),
    ("odd", 3, 1, 7, 5, 3, 5, "both", 0.0),
    ("dropout", 2, 2, 16, 16, 8, 8, "none", 0.3),
    ("masked_dropout", 2, 2, 9, 11, 5, 7, "padding", 0.5),
    ("batch_1", 1, 2, 12, 12, 4, 4, "causal", 0.0),
    ("batch_0", 0, 2, 6, 6, 4, 4, "none", 0.0),
]
needs_fused = pytest.mark.skipif(
    not (native.available() and native.split_gemm_available()),
    reason="the compiled kernels were not built",
)


def _fused_inputs(case: tuple[Any, ...]) -> dict[str, Any]:
    """Head-split views of (B, L, H, dim) buffers, as MultiHeadAttention passes them."""
    _, b, h, t, s, d, dv, mask_kind, rate = case
    rng = np.random.default_rng(7)

    def heads(length: int, dim: int) -> np.ndarray:
        x = rng.standard_normal((b, length, h, dim), dtype=np.float32)
        return x.transpose(0, 2, 1, 3)

    q, k, v, g = heads(t, d), heads(s, d), heads(s, dv), heads(t, dv)
    mask = None
    if mask_kind in ("padding", "both"):
        valid = np.ones((b, s), dtype=bool)
        valid[1:, s // 2 :] = False
        rows = np.ones((b, t), dtype=bool)
        rows[1:, t - 2 :] = False
        mask = rows[:, None, :, None] & valid[:, None, None, :]
    if mask_kind in ("causal", "both"):
        causal = attention_kernels.causal_mask(np, t, s)
        mask = causal if mask is None else mask & causal
    keep = attention_kernels.dropout_keep((b, h, t, s), np.float32, rate, rng, np)
    return {"q": q, "k": k, "v": v, "g": g, "mask": mask, "keep": keep, "scale": d**-0.5}


def _run_attention(a: dict[str, Any]) -> tuple[Any, ...]:
    out, caches = attention_kernels.attention_forward(
        a["q"], a["k"], a["v"], a["scale"], a["mask"], a["keep"]
    )
    grads = attention_kernels.attention_backward(caches, a["g"])
    fused = all(c.fused for _, c in caches)
    return out, attention_kernels.attention_probs(caches), *grads, fused


@needs_fused
@pytest.mark.parametrize("case", FUSED_CASES, ids=[c[0] for c in FUSED_CASES])
def test_fused_attention_equals_the_numpy_chain(
    case: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _fused_inputs(case)
    *fused, ran = _run_attention(a)
    assert ran
    monkeypatch.setattr(native._ext, "attention", None)
    *chain, ran = _run_attention(a)
    assert not ran
    for x, y in zip(fused, chain, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@needs_fused
@pytest.mark.parametrize("case", FUSED_CASES, ids=[c[0] for c in FUSED_CASES])
def test_fused_attention_repeats_bit_for_bit_on_one_or_two_cores(case: tuple[Any, ...]) -> None:
    """Both with one BLAS thread, as in training (OpenBLAS's own threads may sum otherwise).
    On two cores the threads take samples as they come, so which core computes a pair varies
    from run to run: three runs, each equal to the one-thread run."""
    a = _fused_inputs(case)
    with gemm.planned_blas():
        with gemm.whole_products():
            whole = _run_attention(a)
        for _ in range(3):
            split = _run_attention(a)
            for x, y in zip(whole, split, strict=True):
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("case", FUSED_CASES, ids=[c[0] for c in FUSED_CASES])
def test_attention_kernel_equals_torch_float64(case: tuple[Any, ...]) -> None:
    """Output and the three gradients against torch's autograd of the same math in float64
    (Keras's masking: masked scores -1e9, masked weights exactly 0)."""
    torch = pytest.importorskip("torch")
    a = _fused_inputs(case)
    out, _, dq, dk, dv, _ = _run_attention(a)
    q, k, v = (torch.from_numpy(np.ascontiguousarray(a[n])).double() for n in "qkv")
    for x in (q, k, v):
        x.requires_grad_(True)
    scores = (q * a["scale"]) @ k.transpose(-1, -2)
    if a["mask"] is not None:
        allowed = torch.from_numpy(np.array(a["mask"]))
        scores = torch.where(allowed, scores, torch.tensor(-1e9, dtype=torch.float64))
    probs = torch.softmax(scores, dim=-1)
    if a["mask"] is not None:
        probs = probs * allowed
    if a["keep"] is not None:
        probs = probs * torch.from_numpy(a["keep"]).double()
    expected = probs @ v
    (expected * torch.from_numpy(np.ascontiguousarray(a["g"])).double()).sum().backward()
    pairs = [(out, expected), (dq, q.grad), (dk, k.grad), (dv, v.grad)]
    for ours, theirs in pairs:
        assert theirs is not None
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=2e-5, atol=2e-5)


@needs_fused
def test_fused_attention_gradients_equal_finite_differences() -> None:
    """Central differences of sum(out * g) along random directions, in float32 (the kernel's
    only dtype), so the tolerance is a few parts in a thousand."""
    a = _fused_inputs(("fd", 2, 2, 6, 5, 3, 4, "both", 0.0))
    *_, dq, dk, dv, ran = _run_attention(a)
    assert ran
    rng = np.random.default_rng(3)

    def loss(**changed: np.ndarray) -> float:
        b = {**a, **changed}
        out, _ = attention_kernels.attention_forward(
            b["q"], b["k"], b["v"], b["scale"], b["mask"], b["keep"]
        )
        return float(np.sum(out.astype(np.float64) * a["g"]))

    eps = 1e-2
    for name, grad in (("q", dq), ("k", dk), ("v", dv)):
        direction = rng.standard_normal(a[name].shape).astype(np.float32)
        plus = loss(**{name: (a[name] + eps * direction).astype(np.float32)})
        minus = loss(**{name: (a[name] - eps * direction).astype(np.float32)})
        numeric = (plus - minus) / (2 * eps)
        analytic = float(np.sum(grad.astype(np.float64) * direction))
        assert numeric == pytest.approx(analytic, rel=5e-3, abs=5e-3)


def _unaligned(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 (batch, 1, L, dim) view with contiguous rows whose batch stride is not a whole
    number of floats (6 bytes between samples)."""
    b, _, rows, dim = shape
    sample = rows * dim * 4 + 6
    raw = np.zeros(b * sample, dtype=np.uint8)
    return np.ndarray(shape, np.float32, raw, 0, (sample, rows * dim * 4, dim * 4, 4))


def _layouts(a: dict[str, Any], kind: str) -> tuple[np.ndarray, ...]:
    """(q, k, v, probs, out) for the forward call, one of them laid out as `kind` says."""
    q, k, v = a["q"], a["k"], a["v"]
    out = np.zeros(q.shape, dtype=np.float32)
    probs = np.zeros((*q.shape[:3], k.shape[2]), dtype=np.float32)
    if kind == "out_is_q":
        out = q
    elif kind == "out_is_probs":
        out = probs
    elif kind == "out_rows_alias":
        out = np.lib.stride_tricks.as_strided(out, strides=(0, *out.strides[1:]))
    elif kind == "query_stride_not_whole_floats":
        q = _unaligned(q.shape)
    return q, k, v, probs, out


# Layouts the fused kernel must decline, leaving its outputs alone: a written array sharing
# bytes with an input or with the other written one, output rows that alias (both halves would
# write them), a stride that is not whole floats. (2, 1, 4, 4) arrays, so that every view
# passes the kernel's shape checks and only the layout is wrong.
REFUSED = ["out_is_q", "out_is_probs", "out_rows_alias", "query_stride_not_whole_floats"]


@needs_fused
@pytest.mark.parametrize("kind", REFUSED)
def test_fused_forward_declines_unsafe_layouts(kind: str) -> None:
    a = _fused_inputs(("small", 2, 1, 4, 4, 4, 4, "none", 0.0))
    q, k, v, probs, out = _layouts(a, kind)
    before = [x.copy() for x in (q, k, v, probs, out)]
    assert not native.attention_forward(q, k, v, None, None, probs, out, a["scale"], False)
    for x, y in zip((q, k, v, probs, out), before, strict=True):
        np.testing.assert_array_equal(x, y)


@needs_fused
def test_fused_backward_declines_gradients_that_overlap() -> None:
    a = _fused_inputs(("small", 2, 2, 4, 4, 4, 4, "none", 0.0))
    out, caches = attention_kernels.attention_forward(a["q"], a["k"], a["v"], a["scale"], None)
    c = caches[0][1]
    assert c.fused
    dq = np.zeros_like(a["q"])
    shared = np.zeros_like(a["k"])
    grads = (dq, shared, shared)
    assert not native.attention_backward(c.q, c.k, c.v, None, c.probs, a["g"], grads, 1.0, False)
    np.testing.assert_array_equal(dq, 0)


def _packed_grads(a: dict[str, Any], offsets: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """dq, dk, dv as head-split views of one zeroed (batch, T, 3 * heads * dim) buffer, each
    starting `offsets` floats into a row (MultiHeadAttention's packed gradient: 0, H*d, 2H*d)."""
    b, h, t, d = a["q"].shape
    packed = np.zeros((b, t, 3 * h * d + 1), dtype=np.float32)
    return tuple(
        packed[..., o : o + h * d].reshape(b, t, h, d).transpose(0, 2, 1, 3) for o in offsets
    )


# Gradient views sharing one buffer: interleaved columns of each row are apart and the kernel
# writes them (the exact test, where comparing extents would refuse); shifted one float into
# the next view's columns, or laid over it, they share bytes and it declines.
PACKED = [
    ("interleaved", (0, 8, 16), True),
    ("one_float_over", (0, 7, 16), False),
    ("same_columns", (0, 8, 8), False),
]


@needs_fused
@pytest.mark.parametrize(("name", "offsets", "runs"), PACKED, ids=[p[0] for p in PACKED])
def test_fused_backward_writes_gradients_interleaved_in_one_buffer(
    name: str, offsets: tuple[int, int, int], runs: bool
) -> None:
    a = _fused_inputs(("small", 2, 2, 4, 4, 4, 4, "none", 0.0))
    _, caches = attention_kernels.attention_forward(a["q"], a["k"], a["v"], a["scale"], None)
    c = caches[0][1]
    grads = _packed_grads(a, offsets)
    ran = native.attention_backward(c.q, c.k, c.v, None, c.probs, a["g"], grads, c.scale, True)
    assert ran == runs
    if runs:
        expected = attention_kernels.attention_backward(caches, a["g"])
        for ours, theirs in zip(grads, expected, strict=True):
            np.testing.assert_array_equal(ours, theirs)
    else:
        for g in grads:
            np.testing.assert_array_equal(g, 0)


def test_the_cache_holds_the_callers_arrays_and_backward_reads_them() -> None:
    """The documented contract: key and value (and the fused kernel's query) are kept by
    reference, so backward sees what the caller's arrays hold then; MultiHeadAttention never
    writes to its projections between forward and backward."""
    a = _fused_inputs(("ref", 2, 2, 8, 8, 4, 4, "none", 0.0))
    _, caches = attention_kernels.attention_forward(a["q"], a["k"], a["v"], a["scale"], None)
    for _, c in caches:  # the NumPy path keeps views of its batch rows, the kernel the arrays
        assert np.shares_memory(c.k, a["k"]) and np.shares_memory(c.v, a["v"])
        assert np.shares_memory(c.q, a["q"]) == c.fused


def test_constant_masks_are_made_once_per_shape_and_read_only() -> None:
    causal = attention_kernels.causal_mask(np, 5, 7)
    assert causal is attention_kernels.causal_mask(np, 5, 7)
    assert not causal.flags.writeable
    np.testing.assert_array_equal(causal[0, 0], np.tril(np.ones((5, 7), dtype=bool)))
    band = attention_kernels.band_mask(np, 6, 6, 2)
    assert band is attention_kernels.band_mask(np, 6, 6, 2)
    assert not band.flags.writeable
    assert band[0, 0].sum() == 6 + 2 * 5
