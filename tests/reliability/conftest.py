"""The tiny trainable project of the CLI tests, and the hypothesis profiles of the fuzz tests.

`ci` (the default) keeps the fuzz tests within a fixed budget; run
`pytest tests/reliability --hypothesis-profile=long` locally to search much longer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.cli.test_run import project  # noqa: F401  (the tiny project, shared)

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI never flakes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def pytest_configure(config: pytest.Config) -> None:
    """`ci` unless the command line chose a profile (`--hypothesis-profile`)."""
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("ci")
