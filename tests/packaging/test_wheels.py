"""What users get from a package index with and without a C compiler.

`scripts/build_wheels.sh` builds the sdist, a wheel from it, and repairs the wheel into a
manylinux one with auditwheel. That wheel, installed where no compiler can run, must load every
kernel pyproject.toml declares and give the NumPy composites' bits (`scripts/check_wheel.py`
running tests/engine/test_native.py, as cibuildwheel's test-command does); the sdist,
installed there, must skip the kernels and still train on the NumPy path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.packaging.venvs import (
    ROOT,
    declared_kernels,
    install,
    kernel_tests,
    run,
    scratch_venv,
    source_copy,
    without_compiler,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="manylinux wheels"),
    pytest.mark.skipif(shutil.which("auditwheel") is None, reason="pip install auditwheel"),
    pytest.mark.skipif(
        shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None,
        reason="building the kernels needs a C compiler",
    ),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the repaired wheel, built by the script from a copy of the sources."""
    folder = tmp_path_factory.mktemp("wheels")
    script = source_copy(folder) / "scripts" / "build_wheels.sh"
    out = folder / "out"
    command = [str(script), "--no-build-isolation", str(out), sys.executable]
    run(command, folder, dict(os.environ))
    return out


def test_the_repaired_wheel_loads_every_kernel_where_no_compiler_runs(
    built: Path, tmp_path: Path
) -> None:
    (wheel,) = built.glob("modelspec-*-manylinux_*.whl")
    shipped = {
        Path(name).name.split(".")[0]
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("engine/native/") and name.endswith(".so")
    }
    assert shipped == declared_kernels()
    shown = subprocess.run(["auditwheel", "show", str(wheel)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "manylinux_" in shown.stdout
    python = scratch_venv(tmp_path / "venv")
    env = without_compiler(python.parent, tmp_path)
    install(python, wheel, env)
    work = tmp_path / "elsewhere"
    (work / "tests").mkdir(parents=True)
    copies = []
    for source in kernel_tests():
        shutil.copy(ROOT / source, work / "tests")
        if Path(source).name.startswith("test_"):  # not the conftest.py with their fixture
            copies.append(f"tests/{Path(source).name}")
    check = [str(python), str(ROOT / "scripts" / "check_wheel.py"), str(ROOT / "pyproject.toml")]
    output = run([*check, *copies], work, env)
    assert f"all {len(shipped)} kernels load" in output
    assert " passed" in output and "failed" not in output, output
    assert not unexpected_skips(output), output


# Rows that test a CPU feature skip on cores without it; any other skip means a kernel is missing.
CPU_FEATURE_SKIPS = ("needs AVX-512",)


def unexpected_skips(output: str) -> list[str]:
    """The `-rs` summary lines of skips that no missing CPU feature explains."""
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    return [line for line in skips if not any(reason in line for reason in CPU_FEATURE_SKIPS)]


def test_the_sdist_without_a_compiler_installs_and_trains_on_numpy(
    built: Path, tmp_path: Path
) -> None:
    (sdist,) = built.glob("modelspec-*.tar.gz")
    python = scratch_venv(tmp_path / "venv")
    env = without_compiler(python.parent, tmp_path)
    install(python, sdist, env, "--no-build-isolation")
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = (
        "import engine, engine.native as n, pathlib\n"
        "print(n.available(), sorted(pathlib.Path(engine.__file__).parent.rglob('*.so')))"
    )
    assert run([str(python), "-c", probe], work, env).split() == ["False", "[]"]
    modelspec = str(python.parent / "modelspec")
    run([modelspec, "examples", "iris_mlp", "--to", "."], work, env)
    run([modelspec, "train", "iris_mlp.yaml", "--set", "fit.epochs=2"], work, env)
    evaluated = run([modelspec, "evaluate", "iris_mlp.yaml", "--format", "json"], work, env)
    assert '"accuracy"' in evaluated


def test_only_a_missing_cpu_feature_excuses_a_skip() -> None:
    output = (
        "SKIPPED [4] tests/test_native.py:846: chain_sgemm needs AVX-512 and NumPy's OpenBLAS\n"
        "SKIPPED [1] tests/test_native.py:36: built without a C compiler\n"
    )
    assert unexpected_skips(output) == [output.splitlines()[1]]
