"""Losses against Keras 3's formulas written out in NumPy, against torch, and against finite
differences; label shapes, sample weights, from_logits and the fused logits gradient."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine import losses
from engine.backend import get_backend

EPS = 1e-7
N, C = 6, 4
RNG = np.random.default_rng(1234)


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _probs(rng: np.random.Generator) -> np.ndarray:
    return _softmax(rng.normal(size=(N, C)))


def _onehot(rng: np.random.Generator) -> np.ndarray:
    return np.eye(C)[rng.integers(0, C, N)]


def _uniform(lo: float, hi: float) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(lo, hi, (N, C))


def _normal(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(N, C))


def _binary(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2, (N, C)).astype(np.float64)


def _sparse(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, C, N)


def _l2n(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.maximum((x * x).sum(-1, keepdims=True), EPS))


def _huber(t: np.ndarray, p: np.ndarray, d: float) -> np.ndarray:
    e = np.abs(p - t)
    return np.where(e <= d, 0.5 * e**2, d * e - 0.5 * d * d).mean(-1)


def _bce(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(-1)


def _cce(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(q)).sum(-1)


# Keras 3's per-sample definitions (keras/src/losses/losses.py and backend ops), in float64.
REFERENCE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mse": lambda t, p: ((t - p) ** 2).mean(-1),
    "mae": lambda t, p: np.abs(t - p).mean(-1),
    "mape": lambda t, p: 100 * np.abs((t - p) / np.maximum(np.abs(t), EPS)).mean(-1),
    "msle": lambda t, p: (
        (np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2
    ).mean(-1),
    "huber": lambda t, p: _huber(t, p, 1.0),
    "huber_d05": lambda t, p: _huber(t, p, 0.5),
    "log_cosh": lambda t, p: np.log(np.cosh(p - t)).mean(-1),
    "hinge": lambda t, p: np.maximum(1 - (2 * t - 1) * p, 0).mean(-1),
    "hinge_pm1": lambda t, p: np.maximum(1 - t * p, 0).mean(-1),
    "squared_hinge": lambda t, p: (np.maximum(1 - (2 * t - 1) * p, 0) ** 2).mean(-1),
    "kl_divergence": lambda t, p: (
        np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1))
    ).sum(-1),
    "poisson": lambda t, p: (p - t * np.log(p + EPS)).mean(-1),
    "cosine_similarity": lambda t, p: -(_l2n(t) * _l2n(p)).sum(-1),
    "bce": _bce,
    "bce_logits": lambda t, z: _bce(t, 1 / (1 + np.exp(-z))),
    "bce_smooth": lambda t, p: _bce(t * 0.8 + 0.1, p),
    "cce": _cce,
    "cce_logits": lambda t, z: _cce(t, _softmax(z)),
    "cce_smooth": lambda t, p: _cce(t * 0.9 + 0.1 / C, p),
    "cce_smooth_logits": lambda t, z: _cce(t * 0.9 + 0.1 / C, _softmax(z)),
    "scce": lambda t, p: _cce(np.eye(C)[t], p),
    "scce_logits": lambda t, z: _cce(np.eye(C)[t], _softmax(z)),
}


def _torch_value(key: str, t: np.ndarray, p: np.ndarray) -> float:
    """The same loss computed by torch, for the rows whose definition torch shares."""
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    tt, pt = torch.tensor(t), torch.tensor(p)
    table: dict[str, Callable[[], Any]] = {
        "mse": lambda: f.mse_loss(pt, tt),
        "mae": lambda: f.l1_loss(pt, tt),
        "huber": lambda: f.huber_loss(pt, tt, delta=1.0),
        "huber_d05": lambda: f.huber_loss(pt, tt, delta=0.5),
        "poisson": lambda: f.poisson_nll_loss(pt, tt, log_input=False, eps=EPS),
        "kl_divergence": lambda: f.kl_div(pt.log(), tt, reduction="sum") / N,
        "cosine_similarity": lambda: -f.cosine_similarity(pt, tt).mean(),
        "bce": lambda: f.binary_cross_entropy(pt, tt),
        "bce_logits": lambda: f.binary_cross_entropy_with_logits(pt, tt),
        "cce_logits": lambda: f.cross_entropy(pt, tt),
        "cce_smooth_logits": lambda: f.cross_entropy(pt, tt.argmax(-1), label_smoothing=0.1),
        "scce_logits": lambda: f.cross_entropy(pt, torch.tensor(t)),
    }
    return float(table[key]())


TORCH_KEYS = {
    "mse",
    "mae",
    "huber",
    "huber_d05",
    "poisson",
    "kl_divergence",
    "cosine_similarity",
    "bce",
    "bce_logits",
    "cce_logits",
    "cce_smooth_logits",
    "scce_logits",
}


@dataclass(frozen=True)
class LossCase:
    key: str
    spec: Any
    make_true: Callable[[np.random.Generator], np.ndarray]
    make_pred: Callable[[np.random.Generator], np.ndarray]


CASES = [
    LossCase("mse", "mse", _normal, _normal),
    LossCase("mse", "mean_squared_error", _normal, _normal),
    LossCase("mae", "mae", _normal, _normal),
    LossCase("mape", "mape", _uniform(0.5, 2.0), _normal),
    LossCase("msle", "msle", _uniform(0.0, 3.0), _uniform(0.1, 3.0)),
    LossCase("huber", "huber", _normal, _normal),
    LossCase("huber_d05", {"type": "huber", "delta": 0.5}, _normal, _normal),
    LossCase("log_cosh", "log_cosh", _normal, _normal),
    LossCase("hinge", "hinge", _binary, _normal),
    LossCase("hinge_pm1", "hinge", lambda r: 2 * _binary(r) - 1 + 0.5, _normal),
    LossCase("squared_hinge", "squared_hinge", _binary, _normal),
    LossCase("kl_divergence", "kl_divergence", _probs, _probs),
    LossCase("poisson", "poisson", _uniform(0.0, 3.0), _uniform(0.2, 3.0)),
    LossCase("cosine_similarity", "cosine_similarity", _normal, _normal),
    LossCase("bce", "binary_crossentropy", _binary, _uniform(0.05, 0.95)),
    LossCase("bce_logits", {"type": "binary_crossentropy", "from_logits": True}, _binary, _normal),
    LossCase(
        "bce_smooth",
        {"type": "binary_crossentropy", "label_smoothing": 0.2},
        _binary,
        _uniform(0.05, 0.95),
    ),
    LossCase("cce", "categorical_crossentropy", _onehot, lambda r: r.uniform(0.1, 1, (N, C))),
    LossCase(
        "cce_logits",
        {"type": "categorical_crossentropy", "from_logits": True},
        _onehot,
        _normal,
    ),
    LossCase(
        "cce_smooth",
        {"type": "categorical_crossentropy", "label_smoothing": 0.1},
        _onehot,
        _probs,
    ),
    LossCase(
        "cce_smooth_logits",
        {"type": "categorical_crossentropy", "from_logits": True, "label_smoothing": 0.1},
        _onehot,
        _normal,
    ),
    LossCase("scce", "sparse_categorical_crossentropy", _sparse, _probs),
    LossCase(
        "scce_logits",
        {"type": "sparse_categorical_crossentropy", "from_logits": True},
        _sparse,
        _normal,
    ),
]
IDS = [f"{c.key}-{c.spec if isinstance(c.spec, str) else c.spec['type']}" for c in CASES]


def _data(case: LossCase) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(case.key.encode()))
    return case.make_true(rng), case.make_pred(rng).astype(np.float64)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_matches_keras_formula(case: LossCase) -> None:
    t, p = _data(case)
    value, _ = losses.get(case.spec).forward(t, p)
    np.testing.assert_allclose(float(value), REFERENCE[case.key](t, p).mean(), rtol=1e-10)


TORCH_CASES = [c for c in CASES if c.key in TORCH_KEYS]


@pytest.mark.torch
@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.key for c in TORCH_CASES])
def test_value_matches_torch(case: LossCase) -> None:
    t, p = _data(case)
    expected = _torch_value(case.key, t, p)
    value, _ = losses.get(case.spec).forward(t, p)
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sample_weights_scale_per_sample_losses(case: LossCase) -> None:
    t, p = _data(case)
    w = np.random.default_rng(5).uniform(0, 2, N)
    value, _ = losses.get(case.spec).forward(t, p, sample_weight=w)
    expected = (REFERENCE[case.key](t, p) * w).sum() / N
    np.testing.assert_allclose(float(value), expected, rtol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_matches_finite_differences(case: LossCase) -> None:
    t, p = _data(case)
    w = np.random.default_rng(6).uniform(0.5, 2, N)
    loss = losses.get(case.spec)
    _, cache = loss.forward(t, p, sample_weight=w)
    grad = loss.backward(cache)
    numeric = np.zeros_like(p)
    h = 1e-6
    for i in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (float(loss.forward(t, up, w)[0]) - float(loss.forward(t, down, w)[0])) / (
            2 * h
        )
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case: LossCase) -> None:
    t, p = _data(case)
    loss = losses.get(case.spec)
    value, cache = loss.forward(t, p.astype(np.float32))
    grad = loss.backward(cache)
    assert value.dtype == np.float32 and value.shape == ()
    assert grad.dtype == np.float32 and grad.shape == p.shape


@pytest.mark.parametrize(
    ("spec", "labels", "pred"),
    [
        ("binary_crossentropy", np.array([0.0, 1.0, 1.0]), np.array([[0.2], [0.7], [0.4]])),
        ("mse", np.array([0.5, 1.0, -1.0]), np.array([[0.2], [0.7], [0.4]])),
        ("sparse_categorical_crossentropy", np.array([0, 2, 1]), _softmax(RNG.normal(size=(3, 3)))),
    ],
)
def test_labels_with_or_without_trailing_unit_axis_agree(
    spec: str, labels: np.ndarray, pred: np.ndarray
) -> None:
    loss = losses.get(spec)
    flat_value, flat_cache = loss.forward(labels, pred)
    column_value, column_cache = loss.forward(labels[:, None], pred)
    assert float(flat_value) == float(column_value)
    np.testing.assert_array_equal(loss.backward(flat_cache), loss.backward(column_cache))


def _softmax_vjp(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    return p * (g - (g * p).sum(-1, keepdims=True))


FUSED = [
    ("categorical_crossentropy", "softmax", _onehot),
    ({"type": "categorical_crossentropy", "label_smoothing": 0.1}, "softmax", _onehot),
    ("sparse_categorical_crossentropy", "softmax", _sparse),
    ("binary_crossentropy", "sigmoid", _binary),
    ({"type": "binary_crossentropy", "label_smoothing": 0.1}, "sigmoid", _binary),
]


@pytest.mark.parametrize(("spec", "activation", "make_true"), FUSED)
def test_fused_logits_gradient_equals_composite(
    spec: Any, activation: str, make_true: Callable[[np.random.Generator], np.ndarray]
) -> None:
    rng = np.random.default_rng(7)
    t = make_true(rng)
    z = rng.normal(size=(N, C)) * 3
    z[0] = [40.0, -40.0, 0.0, 1.0]  # a saturated row: the clip is active
    loss = losses.get(spec)
    assert loss.fusable_activation == activation
    p = _softmax(z) if activation == "softmax" else 1 / (1 + np.exp(-z))
    w = rng.uniform(0.5, 2.0, N)
    _, cache = loss.forward(t, p, sample_weight=w)
    upstream = loss.backward(cache)
    composite = _softmax_vjp(p, upstream) if activation == "softmax" else upstream * p * (1 - p)
    np.testing.assert_allclose(loss.logits_backward(cache), composite, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("spec", "logits_spec", "make_true"),
    [
        (
            "categorical_crossentropy",
            {"type": "categorical_crossentropy", "from_logits": True},
            _onehot,
        ),
        (
            "sparse_categorical_crossentropy",
            {"type": "sparse_categorical_crossentropy", "from_logits": True},
            _sparse,
        ),
        ("binary_crossentropy", {"type": "binary_crossentropy", "from_logits": True}, _binary),
    ],
)
def test_fused_gradient_equals_from_logits_loss_when_unclipped(
    spec: str, logits_spec: dict[str, Any], make_true: Callable[[np.random.Generator], np.ndarray]
) -> None:
    rng = np.random.default_rng(8)
    t, z = make_true(rng), rng.normal(size=(N, C))
    loss, logits_loss = losses.get(spec), losses.get(logits_spec)
    p = _softmax(z) if loss.fusable_activation == "softmax" else 1 / (1 + np.exp(-z))
    value, cache = loss.forward(t, p)
    logits_value, logits_cache = logits_loss.forward(t, z)
    np.testing.assert_allclose(float(value), float(logits_value), rtol=1e-12)
    np.testing.assert_allclose(
        loss.logits_backward(cache), logits_loss.backward(logits_cache), rtol=1e-9, atol=1e-15
    )


def test_from_logits_is_stable_for_huge_logits() -> None:
    z = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    loss = losses.get({"type": "categorical_crossentropy", "from_logits": True})
    value, cache = loss.forward(np.array([[0.0, 1.0, 0.0]]), z)
    assert float(value) == pytest.approx(2000.0)
    np.testing.assert_allclose(loss.backward(cache), [[1.0, -1.0, 0.0]], atol=1e-6)


def test_only_cross_entropies_on_probabilities_fuse() -> None:
    assert losses.get("mse").fusable_activation is None
    logits = losses.get({"type": "binary_crossentropy", "from_logits": True})
    assert logits.fusable_activation is None
    _, cache = logits.forward(np.array([1.0]), np.array([[0.3]]))
    with pytest.raises(ValueError, match="no fused logits gradient"):
        logits.logits_backward(cache)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("mse", "mean_squared_error"),
        ("MAE", "mean_absolute_error"),
        ("mape", "mean_absolute_percentage_error"),
        ("msle", "mean_squared_logarithmic_error"),
        ("kld", "kl_divergence"),
        ("huber", "huber"),
        ("binary_crossentropy", "binary_crossentropy"),
    ],
)
def test_canonical_names(name: str, canonical: str) -> None:
    assert losses.canonical_name(name) == canonical
    assert losses.get(name).name == canonical


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("nope", ValueError, "unknown loss 'nope'"),
        ({"type": "mse", "from_logits": True}, ValidationError, "from_logits"),
        ({"type": "huber", "delta": -1}, ValidationError, "delta"),
        (
            {"type": "sparse_categorical_crossentropy", "label_smoothing": 0.1},
            ValidationError,
            "label_smoothing",
        ),
        (
            {"type": "categorical_crossentropy", "label_smoothing": 2},
            ValidationError,
            "label_smoothing",
        ),
    ],
)
def test_invalid_specs_are_rejected(spec: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        losses.get(spec)


@pytest.mark.parametrize(
    ("spec", "labels", "pred", "match"),
    [
        ("mse", np.zeros((3, 2)), np.zeros((3, 4)), "do not match"),
        (
            "sparse_categorical_crossentropy",
            np.zeros((3, 2)),
            np.ones((3, 4)),
            "class ids of shape",
        ),
        ("sparse_categorical_crossentropy", np.array([0, 4, 1]), np.ones((3, 4)), r"in \[0, 4\)"),
    ],
)
def test_bad_labels_are_reported(
    spec: str, labels: np.ndarray, pred: np.ndarray, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        losses.get(spec).forward(labels, pred)


def test_every_loss_has_a_row() -> None:
    covered = {losses.get(c.spec).name for c in CASES}
    assert covered == {losses.canonical_name(n) for n in losses.names()}


def test_names_cover_every_spec_name() -> None:
    for name in losses.names():
        assert losses.get(name).name == losses.canonical_name(name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runs_on_the_strict_fake_device(case: LossCase) -> None:
    fake = get_backend("fake")
    t, p = _data(case)
    p = p.astype(np.float32)
    w = np.linspace(0.5, 1.5, N).astype(np.float32)
    loss = losses.get(case.spec)
    host_value, host_cache = loss.forward(t, p, w)
    value, cache = loss.forward(fake.asarray(t), fake.asarray(p), fake.asarray(w))
    grad = loss.backward(cache)
    assert fake.xp.owns(value) and fake.xp.owns(grad)
    assert float(value) == float(host_value)
    np.testing.assert_array_equal(fake.to_host(grad), loss.backward(host_cache))
    if loss.fusable_activation is not None:
        np.testing.assert_array_equal(
            fake.to_host(loss.logits_backward(cache)), loss.logits_backward(host_cache)
        )


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("axis", [-1, 1])
def test_sparse_matches_categorical_on_sequences(from_logits: bool, axis: int) -> None:
    rng = np.random.default_rng(9)
    labels = rng.integers(0, C, (3, 5))
    scores = rng.uniform(0.1, 1.0, (3, 5, C))
    one_hot = np.eye(C)[labels]
    if axis == 1:
        scores, one_hot = np.moveaxis(scores, -1, 1), np.moveaxis(one_hot, -1, 1)
    w = np.array([0.5, 1.0, 2.0])
    args = {"from_logits": from_logits, "axis": axis}
    sparse = losses.get({"type": "sparse_categorical_crossentropy", **args})
    dense = losses.get({"type": "categorical_crossentropy", **args})
    sparse_value, sparse_cache = sparse.forward(labels, scores, w)
    dense_value, dense_cache = dense.forward(one_hot, scores, w)
    np.testing.assert_allclose(float(sparse_value), float(dense_value), rtol=1e-12)
    np.testing.assert_allclose(
        sparse.backward(sparse_cache), dense.backward(dense_cache), rtol=1e-10, atol=1e-14
    )


def test_get_accepts_the_spec_schemas_models() -> None:
    from pydantic import TypeAdapter

    config = TypeAdapter(losses.LossSpec).validate_python(
        {"type": "binary_crossentropy", "from_logits": True}
    )
    loss = losses.get(config)
    assert loss.name == "binary_crossentropy"
    assert loss.get_config()["from_logits"] is True


def test_keras_style_constructors() -> None:
    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)
    assert loss.get_config()["label_smoothing"] == 0.1 and loss.fusable_activation is None
    assert losses.get(loss) is loss
    assert losses.Huber(delta=2.0).config.delta == 2.0
    with pytest.raises(ValidationError, match="from_logits"):
        losses.MeanSquaredError(from_logits=True)
