"""Check an installed modelspec wheel: it loads every compiled kernel pyproject.toml declares,
and the kernels give their NumPy composites' bits.

    python check_wheel.py PYPROJECT NATIVE_TEST...

Each NATIVE_TEST is a copy of a kernel test file (tests/engine/test_native.py, the bit-for-bit
table, and the stacked-product and direct-convolution tests), run with pytest.
Run it from outside the source tree, as cibuildwheel's test-command does: a test run that
imported `engine` from the sources would find no kernels and skip every row, proving nothing.
Exits non-zero, naming what is missing, if any check fails.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def declared_kernels(pyproject: Path) -> list[str]:
    """The module names of every `[[tool.setuptools.ext-modules]]` entry."""
    config = tomllib.loads(pyproject.read_text())
    return [module["name"] for module in config["tool"]["setuptools"]["ext-modules"]]


def problems(pyproject: Path) -> list[str]:
    """What is wrong with the installed package's kernels; empty when all is well."""
    import engine
    from engine import native

    source = pyproject.resolve().parent
    if Path(engine.__file__).resolve().is_relative_to(source):
        return [f"engine was imported from the source tree {source}, not the installed wheel"]
    found = []
    for name in declared_kernels(pyproject):
        try:
            importlib.import_module(name)
        except ImportError as error:
            found.append(f"{name} does not load: {error}")
    if not native.available():
        found.append("engine.native.available() is False")
    return found


def main() -> int:
    pyproject, tests = Path(sys.argv[1]), sys.argv[2:]
    found = problems(pyproject)
    for problem in found:
        print(f"check_wheel: {problem}", file=sys.stderr)
    if found:
        return 1
    print(f"check_wheel: all {len(declared_kernels(pyproject))} kernels load")
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
