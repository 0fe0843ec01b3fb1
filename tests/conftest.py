"""Set-up shared by every test folder."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from engine import native


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the tests as it reaches a user's terminal. A shell that starts a job in
    the background (`cmd &`, nohup) hands it SIGINT ignored, Python keeps it ignored, and the
    processes the tests start inherit that: the tests of Ctrl-C handling would see no signal."""
    del config
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _gpu_missing() -> str | None:
    from engine.backend import DeviceUnavailableError, get_backend

    try:
        get_backend("gpu")
    except DeviceUnavailableError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu`-marked tests, in any folder, unless CuPy sees a CUDA device."""
    del config
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    reason = _gpu_missing() if gpu_items else None
    if reason is None:
        return
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=f"no GPU: {reason}"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses `each_isa` runs once per instruction-set variant of the compiled loops
    this CPU runs (`engine/native/isa.h`), or once without the kernels: no skipped rows, so the
    wheel check (`scripts/check_wheel.py`, which copies this file) sees none."""
    if "each_isa" in metafunc.fixturenames:
        levels = native.isa_levels() or native.ISA_LEVELS[:1]
        metafunc.parametrize("each_isa", levels, indirect=True)


@pytest.fixture
def each_isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the loops at the level of this row of the test, then at the level before."""
    level: str = request.param
    if not native.isa_levels():
        yield level
        return
    before = native.use_isa(level)
    try:
        yield level
    finally:
        native.use_isa(before)
