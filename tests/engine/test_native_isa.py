"""Which instruction-set variant the compiled loops run (`engine/native/isa.h`).

The kernel tests run once per variant the CPU runs (the `each_isa` fixture), so an AVX2-only
bug shows on an AVX-512 machine; these check that the choice reaches every module, that the
environment caps it at import, and that a level the CPU lacks or nobody knows is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import native

ROOT = Path(__file__).resolve().parents[2]
needs_native = pytest.mark.skipif(not native.available(), reason="built without a C compiler")

# the modules with loops of their own (`_batched` runs `_split`'s worker and sgemm only)
WITH_LOOPS = [name for name in native.COMPILED if name != "_batched"]


def _levels_in_a_process(isa: str) -> list[str]:
    """Each module's (level, best) in a fresh process started with MODELSPEC_NATIVE_ISA=isa."""
    script = (
        "import engine.native as n\n"
        f"print(' '.join(':'.join(getattr(n._ext, m[1:]).isa()) for m in {WITH_LOOPS!r}))\n"
    )
    env = {**os.environ, native.ISA: isa, "PYTHONPATH": str(ROOT)}
    env.pop(native.SWITCH, None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


@needs_native
def test_every_module_with_loops_runs_the_level_asked_for() -> None:
    levels = native.isa_levels()
    assert levels[0] == "default" and set(levels) <= set(native.ISA_LEVELS)
    before = native.use_isa(levels[0])
    try:
        for level in levels:
            assert native.use_isa(level) in levels
            for name in WITH_LOOPS:
                assert getattr(native._ext, name[1:]).isa() == (level, levels[-1])
    finally:
        native.use_isa(before)


@needs_native
@pytest.mark.parametrize("level", ["sse4", "AVX2", ""])
def test_a_level_with_another_name_is_refused(level: str) -> None:
    with pytest.raises(ValueError, match="not a level"):
        native._ext.kernels.isa(level)


@needs_native
def test_a_level_above_the_cpus_is_refused() -> None:
    best = native.isa_levels()[-1]
    for level in native.ISA_LEVELS[native.ISA_LEVELS.index(best) + 1 :]:
        with pytest.raises(ValueError, match="not a level this CPU runs"):
            native._ext.kernels.isa(level)


@needs_native
@pytest.mark.parametrize("level", native.ISA_LEVELS)
def test_the_environment_caps_the_level_at_import(level: str) -> None:
    best = native.isa_levels()[-1]
    expected = min(level, best, key=native.ISA_LEVELS.index)
    assert _levels_in_a_process(level) == [f"{expected}:{best}"] * len(WITH_LOOPS)


@needs_native
def test_a_misspelt_level_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before any module loads: running the best level instead would test nothing."""
    monkeypatch.delenv(native.SWITCH, raising=False)
    monkeypatch.setenv(native.ISA, "avx-2")
    monkeypatch.setattr(native, "_ext", native._Extensions())
    with pytest.raises(ValueError, match="MODELSPEC_NATIVE_ISA='avx-2'"):
        native.available()
