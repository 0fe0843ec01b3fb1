"""Skip `gpu`-marked tests unless CuPy sees a CUDA device."""

from __future__ import annotations

import pytest

from engine.backend import DeviceUnavailableError, get_backend


def _gpu_missing() -> str | None:
    try:
        get_backend("gpu")
    except DeviceUnavailableError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    reason = _gpu_missing() if gpu_items else None
    if reason is None:
        return
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=f"no GPU: {reason}"))
