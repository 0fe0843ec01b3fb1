"""Learning-rate schedules against Keras 3's formulas, and their use by the optimizers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine import optimizers
from engine.optimizers import schedules

CASES: list[tuple[dict[str, Any], list[tuple[int, float]]]] = [
    (
        {
            "type": "exponential_decay",
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "decay_rate": 0.5,
        },
        [(0, 0.1), (5, 0.1 * 0.5**0.5), (10, 0.05), (25, 0.1 * 0.5**2.5)],
    ),
    (
        {
            "type": "exponential_decay",
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "decay_rate": 0.5,
            "staircase": True,
        },
        [(0, 0.1), (9, 0.1), (10, 0.05), (25, 0.025)],
    ),
    (
        {"type": "cosine_decay", "initial_learning_rate": 0.2, "decay_steps": 100},
        [(0, 0.2), (50, 0.1), (100, 0.0), (150, 0.0), (25, 0.1 * (1 + math.cos(math.pi / 4)))],
    ),
    (
        {"type": "cosine_decay", "initial_learning_rate": 0.2, "decay_steps": 100, "alpha": 0.1},
        [(0, 0.2), (50, 0.2 * (0.9 * 0.5 + 0.1)), (100, 0.02), (400, 0.02)],
    ),
    (
        {
            "type": "cosine_decay",
            "initial_learning_rate": 0.0,
            "decay_steps": 10,
            "warmup_target": 1.0,
            "warmup_steps": 4,
        },
        [(0, 0.0), (2, 0.5), (4, 1.0), (9, 0.5), (14, 0.0)],
    ),
    (
        {"type": "piecewise_constant_decay", "boundaries": [10, 20], "values": [1.0, 0.5, 0.1]},
        [(0, 1.0), (10, 1.0), (11, 0.5), (20, 0.5), (21, 0.1), (1000, 0.1)],
    ),
]


@pytest.mark.parametrize(("config", "points"), CASES, ids=[c["type"] for c, _ in CASES])
def test_schedule_matches_keras_formula(
    config: dict[str, Any], points: list[tuple[int, float]]
) -> None:
    schedule = schedules.get(config)
    for step, expected in points:
        assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15), step
    assert schedule.get_config()["type"] == config["type"]


def test_optimizer_evaluates_the_schedule_at_iterations_before_each_step() -> None:
    config = {"type": "piecewise_constant_decay", "boundaries": [1, 2], "values": [1.0, 0.5, 0.25]}
    opt = optimizers.get({"type": "sgd", "learning_rate": config})
    param = np.zeros(3, dtype=np.float32)
    grad = np.ones(3, dtype=np.float32)
    seen = []
    for _ in range(4):
        seen.append(opt.learning_rate)
        before = param.copy()
        opt.apply([param], [grad])
        np.testing.assert_allclose(before - param, seen[-1])
    assert seen == [1.0, 1.0, 0.5, 0.25]
    assert opt.get_config()["learning_rate"]["type"] == "piecewise_constant_decay"


def test_resumed_optimizer_continues_the_schedule() -> None:
    spec = {
        "type": "adam",
        "learning_rate": {
            "type": "exponential_decay",
            "initial_learning_rate": 0.1,
            "decay_steps": 2,
            "decay_rate": 0.5,
        },
    }
    first = optimizers.get(spec)
    first.apply([np.zeros(2)], [np.ones(2)])
    first.apply([np.zeros(2)], [np.ones(2)])
    second = optimizers.get(spec)
    second.set_state(first.get_state())
    second.build([np.zeros(2)])
    assert second.learning_rate == first.learning_rate == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (
            {"type": "piecewise_constant_decay", "boundaries": [1, 2], "values": [1.0]},
            "one more entry than boundaries",
        ),
        (
            {"type": "piecewise_constant_decay", "boundaries": [3, 2], "values": [1.0, 2.0, 3.0]},
            "strictly increasing",
        ),
        (
            {
                "type": "exponential_decay",
                "initial_learning_rate": 0.1,
                "decay_steps": 0,
                "decay_rate": 0.5,
            },
            "decay_steps",
        ),
        (
            {"type": "cosine_decay", "initial_learning_rate": 0.1, "decay_steps": 5, "alpha": 2},
            "alpha",
        ),
        ({"type": "linear_decay"}, "linear_decay"),
    ],
)
def test_invalid_schedules_are_rejected(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        schedules.get(config)


def test_names() -> None:
    assert schedules.names() == ["cosine_decay", "exponential_decay", "piecewise_constant_decay"]
