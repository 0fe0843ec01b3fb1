"""The compiled kernels must build where GCC's x86-64 Linux attributes are not used (clang,
macOS, other compilers): their sources are checked with that branch of `loops.h` selected."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

NATIVE = Path(__file__).resolve().parents[2] / "engine" / "native"
SOURCES = sorted(NATIVE.glob("_*.c"))


HAS_HEADERS = (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


@pytest.mark.skipif(shutil.which("cc") is None or not HAS_HEADERS, reason="no C toolchain")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_kernel_source_compiles_without_gcc_linux_attributes(source: Path) -> None:
    includes = [sysconfig.get_paths()["include"], np.get_include(), str(NATIVE)]
    command = ["cc", "-U__linux__", "-std=c99", "-fsyntax-only", str(source)]
    command += [f"-I{path}" for path in includes]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
