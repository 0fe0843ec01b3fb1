"""engine/allocator.py: glibc's thresholds set once per process, and arrays freed by a step reused
without fresh pages (counted as minor page faults, not timed)."""

from __future__ import annotations

import platform
import resource
import sys

import numpy as np
import pytest

from engine import allocator

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the thresholds are glibc's",
)


@glibc
def test_the_thresholds_are_set_on_glibc() -> None:
    assert allocator.keep_freed_blocks()
    assert allocator.keep_freed_blocks()  # once per process, the same answer after


@glibc
def test_freed_activation_sized_arrays_are_reused_without_fresh_pages() -> None:
    allocator.keep_freed_blocks()
    shape = (128, 32, 32, 16)  # W7's largest activation, 8 MiB

    def step() -> None:
        for _ in range(4):
            a = np.empty(shape, dtype=np.float32)
            a.fill(1.0)
            b = np.empty(shape, dtype=np.float32)
            b.fill(2.0)
            del a, b

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # 8 fresh 8 MiB arrays would be 16,384 faults of 4 KiB pages
    assert faults < 1000


def test_the_allocator_is_left_alone_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    allocator.keep_freed_blocks.cache_clear()
    try:
        assert not allocator.keep_freed_blocks()
    finally:
        allocator.keep_freed_blocks.cache_clear()
