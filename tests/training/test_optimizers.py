"""Optimizers against Keras 3's update rules written out by hand, against torch.optim where the
rules coincide, and for clipping, state round trips and flat-buffer equivalence."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine import optimizers
from engine.backend import get_backend
from engine.optimizers import base as optimizer_base
from engine.tensor import Variable

STEPS = 5
SHAPES = [(3, 4), (4,), (2, 2, 3)]


def _params_and_grads(seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in SHAPES]
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def _run(spec: Any, params: list[np.ndarray], grads: list[list[np.ndarray]]) -> list[np.ndarray]:
    opt = optimizers.get(spec)
    params = [p.copy() for p in params]
    for step_grads in grads:
        opt.apply(params, step_grads)
    return params


# --- Keras 3's rules, one step at a time, in float64 (t counts from 1) -----------------------


def _keras_sgd(c: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray, dict, int], None]:
    lr, mom, nesterov = c.get("learning_rate", 0.01), c.get("momentum", 0.0), c.get("nesterov")

    def step(p: np.ndarray, g: np.ndarray, s: dict, t: int) -> None:
        if not mom:
            p -= lr * g
            return
        s["v"] = mom * s.get("v", 0.0) - lr * g
        p += mom * s["v"] - lr * g if nesterov else s["v"]

    return step


def _keras_adam(c: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray, dict, int], None]:
    lr, b1, b2 = c.get("learning_rate", 0.001), c.get("beta_1", 0.9), c.get("beta_2", 0.999)
    eps, wd = c.get("epsilon", 1e-7), c.get("weight_decay") or 0.0

    def step(p: np.ndarray, g: np.ndarray, s: dict, t: int) -> None:
        p -= p * wd * lr
        s["m"] = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - b1)
        s["v"] = s.get("v", 0.0) + (g * g - s.get("v", 0.0)) * (1 - b2)
        v = s["v"]
        if c.get("amsgrad"):
            s["vmax"] = v = np.maximum(s.get("vmax", 0.0), v)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        p -= alpha * s["m"] / (np.sqrt(v) + eps)

    return step


def _keras_rmsprop(c: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray, dict, int], None]:
    lr, rho, mom = c.get("learning_rate", 0.001), c.get("rho", 0.9), c.get("momentum", 0.0)
    eps = c.get("epsilon", 1e-7)

    def step(p: np.ndarray, g: np.ndarray, s: dict, t: int) -> None:
        s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
        denominator = s["v"] + eps
        if c.get("centered"):
            s["a"] = rho * s.get("a", 0.0) + (1 - rho) * g
            denominator = s["v"] - s["a"] ** 2 + eps
        increment = lr * g / np.sqrt(denominator)
        if mom:
            s["mom"] = mom * s.get("mom", 0.0) + increment
            p -= s["mom"]
        else:
            p -= increment

    return step


def _keras_adagrad(c: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray, dict, int], None]:
    lr, eps = c.get("learning_rate", 0.001), c.get("epsilon", 1e-7)
    init = c.get("initial_accumulator_value", 0.1)

    def step(p: np.ndarray, g: np.ndarray, s: dict, t: int) -> None:
        s["acc"] = s.get("acc", init) + g * g
        p -= lr * g / np.sqrt(s["acc"] + eps)

    return step


def _keras_nadam(c: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray, dict, int], None]:
    lr, b1, b2 = c.get("learning_rate", 0.001), c.get("beta_1", 0.9), c.get("beta_2", 0.999)
    eps = c.get("epsilon", 1e-7)

    def u(t: int) -> float:
        return b1 * (1 - 0.5 * 0.96**t)

    def step(p: np.ndarray, g: np.ndarray, s: dict, t: int) -> None:
        product = math.prod(u(i) for i in range(1, t + 1))
        s["m"] = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - b1)
        s["v"] = s.get("v", 0.0) + (g * g - s.get("v", 0.0)) * (1 - b2)
        m_hat = u(t + 1) * s["m"] / (1 - product * u(t + 1)) + (1 - u(t)) * g / (1 - product)
        v_hat = s["v"] / (1 - b2**t)
        p -= m_hat * lr / (np.sqrt(v_hat) + eps)

    return step


KERAS_RULES = {
    "sgd": _keras_sgd,
    "adam": _keras_adam,
    "adamw": lambda c: _keras_adam({"weight_decay": 0.004, **c}),
    "rmsprop": _keras_rmsprop,
    "adagrad": _keras_adagrad,
    "nadam": _keras_nadam,
}

CONFIGS: list[dict[str, Any]] = [
    {"type": "sgd"},
    {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
    {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
    {"type": "adam"},
    {"type": "adam", "learning_rate": 0.01, "beta_1": 0.8, "amsgrad": True},
    {"type": "adam", "learning_rate": 0.01, "weight_decay": 0.1},
    {"type": "adamw", "learning_rate": 0.01},
    {"type": "rmsprop"},
    {"type": "rmsprop", "learning_rate": 0.01, "momentum": 0.5, "centered": True},
    {"type": "adagrad", "learning_rate": 0.1},
    {"type": "nadam", "learning_rate": 0.01},
]
CONFIG_IDS = [
    "-".join(f"{k}={v}" for k, v in c.items() if k != "type") or c["type"] for c in CONFIGS
]
CONFIG_IDS = [f"{c['type']}:{i}" for c, i in zip(CONFIGS, CONFIG_IDS, strict=True)]


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_steps_match_keras_rule(config: dict[str, Any]) -> None:
    params, grads = _params_and_grads()
    rule = KERAS_RULES[config["type"]]({k: v for k, v in config.items() if k != "type"})
    expected = [p.copy() for p in params]
    states: list[dict] = [{} for _ in params]
    for t, step_grads in enumerate(grads, start=1):
        for p, g, s in zip(expected, step_grads, states, strict=True):
            rule(p, g, s, t)
    got = _run(config, params, grads)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _torch_optimizer(torch: Any, config: dict[str, Any], params: list[Any]) -> Any:
    """torch.optim settings under which its rule is Keras's: eps made negligible where torch
    places it differently (Adam, RMSprop, Adagrad), Nadam's schedule exponent matched."""
    c = {k: v for k, v in config.items() if k != "type"}
    lr = c.get("learning_rate")
    o = torch.optim
    table: dict[str, Callable[[], Any]] = {
        "sgd": lambda: o.SGD(
            params,
            lr=lr or 0.01,
            momentum=c.get("momentum", 0.0),
            nesterov=c.get("nesterov", False),
        ),
        "adam": lambda: o.Adam(
            params,
            lr=lr or 0.001,
            betas=(c.get("beta_1", 0.9), 0.999),
            eps=1e-12,
            amsgrad=c.get("amsgrad", False),
            weight_decay=0.0,
        ),
        "adamw": lambda: o.AdamW(params, lr=lr or 0.001, eps=1e-12, weight_decay=0.004),
        "rmsprop": lambda: o.RMSprop(
            params,
            lr=lr or 0.001,
            alpha=0.9,
            eps=1e-12,
            momentum=c.get("momentum", 0.0),
            centered=c.get("centered", False),
        ),
        "adagrad": lambda: o.Adagrad(
            params, lr=lr or 0.001, initial_accumulator_value=0.1, eps=1e-12
        ),
        "nadam": lambda: o.NAdam(params, lr=lr or 0.001, eps=1e-7, momentum_decay=1.0),
    }
    return table[config["type"]]()


TORCH_CONFIGS = [c for c in CONFIGS if not c.get("weight_decay") and not c.get("amsgrad")]


@pytest.mark.torch
@pytest.mark.parametrize("config", TORCH_CONFIGS, ids=[c["type"] for c in TORCH_CONFIGS])
def test_steps_match_torch_where_the_rules_coincide(config: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    params, grads = _params_and_grads()
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = _torch_optimizer(torch, config, tensors)
    for step_grads in grads:
        for tensor, g in zip(tensors, step_grads, strict=True):
            tensor.grad = torch.tensor(g)
        opt.step()
    spec = dict(config)
    if spec["type"] in ("adam", "adamw", "rmsprop", "adagrad"):
        spec["epsilon"] = 1e-12
    got = _run(spec, params, grads)
    for a, b in zip(got, tensors, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-6, atol=1e-9)


CLIPS = [
    ({"clipvalue": 0.5}, lambda gs: [np.clip(g, -0.5, 0.5) for g in gs]),
    (
        {"clipnorm": 1.0},
        lambda gs: [g * 1.0 / max(np.linalg.norm(g), 1.0) for g in gs],
    ),
    (
        {"global_clipnorm": 1.0},
        lambda gs: [g / max(math.sqrt(sum(float((x * x).sum()) for x in gs)), 1.0) for g in gs],
    ),
    ({"clipnorm": 100.0}, lambda gs: gs),
]


@pytest.mark.parametrize(
    ("clip", "expected"), CLIPS, ids=[next(iter(c)) + str(next(iter(c.values()))) for c, _ in CLIPS]
)
def test_clipping_matches_keras(clip: dict[str, float], expected: Callable[[list], list]) -> None:
    params, grads = _params_and_grads(1)
    got = _run({"type": "sgd", "learning_rate": 1.0, **clip}, params, grads[:1])
    for p, g, new in zip(params, expected(grads[0]), got, strict=True):
        np.testing.assert_allclose(p - new, g, rtol=1e-12)


def test_clipping_leaves_callers_gradients_alone() -> None:
    params, grads = _params_and_grads(2)
    before = [g.copy() for g in grads[0]]
    _run({"type": "adam", "clipvalue": 0.1}, params, grads[:1])
    for a, b in zip(before, grads[0], strict=True):
        np.testing.assert_array_equal(a, b)


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.reshape(-1) for a in arrays]).astype(np.float32)


def _segments() -> list[slice]:
    sizes = [math.prod(s) for s in SHAPES]
    starts = np.cumsum([0, *sizes])
    return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]


FLAT_CONFIGS = [
    *CONFIGS,
    {"type": "adam", "clipnorm": 0.5},
    {"type": "rmsprop", "global_clipnorm": 0.5},
]


@pytest.mark.parametrize("config", FLAT_CONFIGS, ids=[c["type"] for c in FLAT_CONFIGS])
def test_flat_buffer_equals_per_variable_bit_for_bit(config: dict[str, Any]) -> None:
    params, grads = _params_and_grads(3)
    params32 = [p.astype(np.float32) for p in params]
    per_variable = _run(config, params32, [[g.astype(np.float32) for g in gs] for gs in grads])
    flat = _flat(params32)
    opt = optimizers.get(config)
    opt.build([flat], segments=_segments())
    for step_grads in grads:
        opt.apply([flat], [_flat(step_grads)])
    np.testing.assert_array_equal(flat, _flat(per_variable))
    assert flat.dtype == np.float32


@pytest.mark.parametrize("config", FLAT_CONFIGS, ids=[c["type"] for c in FLAT_CONFIGS])
def test_state_round_trip_resumes_bit_identically(config: dict[str, Any]) -> None:
    params, grads = _params_and_grads(4)
    params = [p.astype(np.float32) for p in params]
    grads = [[g.astype(np.float32) for g in gs] for gs in grads]
    straight = _run(config, params, grads)

    first = optimizers.get(config)
    resumed = [p.copy() for p in params]
    for step_grads in grads[:2]:
        first.apply(resumed, step_grads)
    state = first.get_state()
    assert state["iterations"] == 2
    second = optimizers.get(first.get_config())
    second.set_state(state)  # before build: applied when the state arrays are made
    second.build(resumed)
    for step_grads in grads[2:]:
        second.apply(resumed, step_grads)
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_state_rejects_another_optimizers_state() -> None:
    params, grads = _params_and_grads(5)
    adam = optimizers.get("adam")
    adam.apply(params, grads[0])
    sgd = optimizers.get("sgd")
    sgd.build(params)
    with pytest.raises(ValueError, match="does not match this sgd optimizer"):
        sgd.set_state(adam.get_state())


def test_apply_gradients_updates_variables_like_apply() -> None:
    params, grads = _params_and_grads(6)
    variables = [Variable(p.astype(np.float32)) for p in params]
    opt = optimizers.get({"type": "nadam", "learning_rate": 0.01})
    for step_grads in grads:
        opt.apply_gradients(
            [(g.astype(np.float32), v) for g, v in zip(step_grads, variables, strict=True)]
        )
    expected = _run(
        {"type": "nadam", "learning_rate": 0.01},
        [p.astype(np.float32) for p in params],
        [[g.astype(np.float32) for g in gs] for gs in grads],
    )
    for v, e in zip(variables, expected, strict=True):
        np.testing.assert_array_equal(v.numpy(), e)
    assert opt.iterations == STEPS
    with pytest.raises(ValueError, match="different list of variables"):
        opt.apply_gradients([(grads[0][0], variables[0])])


def test_state_is_float32_and_sized_like_the_params() -> None:
    flat = np.zeros(10, dtype=np.float32)
    opt = optimizers.get({"type": "rmsprop", "momentum": 0.9, "centered": True})
    opt.apply([flat], [np.ones(10, dtype=np.float32)])
    arrays = {k: v for k, v in opt.get_state().items() if isinstance(v, np.ndarray)}
    assert sorted(arrays) == ["average_gradient/0", "momentum/0", "velocity/0"]
    assert all(a.dtype == np.float32 and a.shape == (10,) for a in arrays.values())


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"type": "adam", "learning_rate": -1}, "learning_rate must be positive; got -1"),
        ({"type": "sgd", "learning_rate": 0}, "learning_rate must be positive; got 0"),
        ({"type": "sgd", "momentum": 1.5}, "momentum"),
        ({"type": "adam", "clipnorm": 1, "clipvalue": 1}, "only one of clipnorm, clipvalue"),
        ({"type": "adam", "beta_1": 1.0}, "beta_1"),
        ({"type": "adam", "nesterov": True}, "nesterov"),
        ({"type": "adagrad", "epsilon": 0}, "epsilon"),
    ],
)
def test_invalid_hyperparameters_name_the_field(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        optimizers.get(spec)


def test_constructor_validates_like_the_spec() -> None:
    with pytest.raises(ValueError, match="learning_rate must be positive; got -1"):
        optimizers.Adam(learning_rate=-1)
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        optimizers.get("adamax")


@pytest.mark.parametrize(
    ("name", "defaults"),
    [
        ("sgd", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
        ("adam", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
        ("adamw", {"learning_rate": 0.001, "weight_decay": 0.004, "amsgrad": False}),
        ("rmsprop", {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "centered": False}),
        ("adagrad", {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7}),
        ("nadam", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    ],
)
def test_keras_defaults(name: str, defaults: dict[str, Any]) -> None:
    config = optimizers.get(name).get_config()
    assert config["type"] == name
    assert {k: config[k] for k in defaults} == defaults
    assert name in optimizers.names()


@pytest.mark.parametrize("config", FLAT_CONFIGS, ids=[c["type"] for c in FLAT_CONFIGS])
def test_runs_on_the_strict_fake_device(config: dict[str, Any]) -> None:
    fake = get_backend("fake")
    params, grads = _params_and_grads(7)
    flat, flat_grads = _flat(params), [_flat(gs) for gs in grads]
    host = flat.copy()
    host_opt = optimizers.get(config)
    host_opt.build([host], segments=_segments())
    device = fake.asarray(flat)
    opt = optimizers.get(config)
    opt.build([device], segments=_segments())
    for g in flat_grads:
        host_opt.apply([host], [g])
        opt.apply([device], [fake.asarray(g)])
    assert fake.xp.owns(device)
    np.testing.assert_array_equal(fake.to_host(device), host)
    state = opt.get_state()
    assert all(type(v) is np.ndarray for v in state.values() if hasattr(v, "shape"))
    restored = optimizers.get(config)
    restored.build([fake.asarray(flat)], segments=_segments())
    restored.set_state(state)
    for key, value in restored.get_state().items():
        np.testing.assert_array_equal(value, state[key])


# Every optimizer whose state shrinks geometrically while a gradient stays zero, with decay
# factors of 0.8 so that the state reaches the bottom of float32's range in a test's time.
DECAYING = [
    {"type": "sgd", "momentum": 0.8},
    {"type": "sgd", "momentum": 0.8, "nesterov": True},
    {"type": "rmsprop", "rho": 0.8},
    {"type": "rmsprop", "rho": 0.8, "centered": True, "momentum": 0.8},
    {"type": "adam", "beta_1": 0.8, "beta_2": 0.8},
    {"type": "adamw", "beta_1": 0.8, "beta_2": 0.8},
    {"type": "nadam", "beta_1": 0.8, "beta_2": 0.8},
]


@pytest.mark.parametrize("config", DECAYING, ids=lambda c: "_".join(map(str, c.values())))
@pytest.mark.parametrize("size", [16, optimizer_base.PARALLEL_MIN_SIZE], ids=["small", "split"])
def test_state_of_a_dead_unit_goes_to_positive_zero_never_denormal(
    config: dict[str, Any], size: int
) -> None:
    """After one real gradient and then zeros (a unit that died), every slot decays by a
    constant factor per step; it must go from normal numbers straight to +0, because Intel
    cores compute with denormal numbers in slow microcode (engine/optimizers/underflow.py).
    The compiled Adam and the two-thread split run on the large buffer."""
    tiny = np.finfo(np.float32).tiny
    param = np.ones(size, dtype=np.float32)
    grad = np.zeros_like(param)
    ends = np.r_[0:8, size - 8 : size]  # in both halves of a split update
    grad[ends] = [1.0, -1.0, 1e-3, -1e-3, 1e-12, -1e-12, 0.0, 30.0] * 2
    opt = optimizers.get(config)
    opt.build([param])
    opt.apply([param], [grad])
    grad[:] = 0.0
    slots = [s[0] for s in opt._slots.values()]
    assert all(np.abs(s[ends[:6]]).min() > tiny for s in slots)  # all normal, none zero yet
    for _ in range(600):
        opt.apply([param], [grad])
        for s in slots:
            watched = s[ends]
            assert not ((watched != 0) & (np.abs(watched) < tiny)).any()
    for s in slots:
        assert not s.any() and not np.signbit(s).any()
    assert np.isfinite(param).all()


@pytest.mark.parametrize("config", DECAYING, ids=lambda c: "_".join(map(str, c.values())))
def test_float64_state_is_flushed_only_below_float64s_normal_range(config: dict[str, Any]) -> None:
    """Keras's float64 state keeps numbers that are normal in float64 but below float32's range
    (here every slot): the flush is for denormals, of the state's own dtype."""
    param = np.ones(4)
    grad = np.full(4, 1e-37)
    opt = optimizers.get(config)
    opt.build([param])
    opt.apply([param], [grad])
    grad[:] = 0.0
    for _ in range(3):
        opt.apply([param], [grad])
    slots = [s[0] for s in opt._slots.values()]
    assert all(s.dtype == np.float64 and s.all() for s in slots)
    assert any(np.abs(s).max() < np.finfo(np.float32).tiny for s in slots)


@pytest.mark.parametrize("config", FLAT_CONFIGS, ids=[c["type"] for c in FLAT_CONFIGS])
def test_two_thread_split_is_bit_identical(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    params, grads = _params_and_grads(8)
    results = []
    for threshold in (10**9, 8):
        monkeypatch.setattr(optimizer_base, "PARALLEL_MIN_SIZE", threshold)
        flat = _flat(params)
        opt = optimizers.get(config)
        opt.build([flat], segments=_segments())
        for step_grads in grads:
            opt.apply([flat], [_flat(step_grads)])
        results.append(flat)
    np.testing.assert_array_equal(results[0], results[1])


def test_learning_rate_can_be_set_and_is_part_of_the_state() -> None:
    opt = optimizers.get("sgd")
    opt.learning_rate = 0.5
    param = np.zeros(2)
    opt.apply([param], [np.ones(2)])
    np.testing.assert_allclose(param, [-0.5, -0.5])
    resumed = optimizers.get("sgd")
    resumed.set_state(opt.get_state())
    resumed.build([param])
    assert resumed.learning_rate == 0.5
    with pytest.raises(ValueError, match="learning_rate must be positive; got -1"):
        opt.learning_rate = -1
    scheduled = optimizers.get(
        {
            "type": "sgd",
            "learning_rate": {
                "type": "cosine_decay",
                "initial_learning_rate": 1.0,
                "decay_steps": 5,
            },
        }
    )
    with pytest.raises(TypeError, match="schedule"):
        scheduled.learning_rate = 0.1


def test_get_accepts_the_spec_schemas_models() -> None:
    from pydantic import TypeAdapter

    spec = {"type": "nadam", "global_clipnorm": 2.0, "learning_rate": 0.01}
    opt = optimizers.get(TypeAdapter(optimizers.OptimizerSpec).validate_python(spec))
    assert isinstance(opt, optimizers.Nadam)
    assert {k: opt.get_config()[k] for k in spec} == spec
    assert (
        optimizers.get(TypeAdapter(optimizers.OptimizerSpec).validate_python("adam")).name == "adam"
    )
