"""What the packaging tests share: a copy of the sources to build from, a scratch virtual
environment that borrows this one's dependencies (no network), and the environment of a user
with no C compiler."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest's own dependency there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = (".*", "build", "dist", "runs", "*.egg-info", "__pycache__", "*.so")
COMPILERS = ("cc", "gcc", "clang", "c99", "x86_64-linux-gnu-gcc")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """stdout of a command that must succeed without a traceback."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


def source_copy(folder: Path) -> Path:
    """The repository without build output: an in-tree build leaves build/ behind, whose stale
    files a later wheel would ship."""
    source = folder / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    return source


def declared_kernels() -> set[str]:
    """The compiled modules pyproject.toml declares, by file stem (`_kernels`, ...)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {m["name"].rsplit(".", 1)[-1] for m in config["tool"]["setuptools"]["ext-modules"]}


def kernel_tests() -> list[str]:
    """The kernel test files cibuildwheel copies next to an installed wheel (`test-sources`),
    and the conftest.py with their fixture."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["cibuildwheel"]["test-sources"])


def scratch_venv(folder: Path) -> Path:
    """A new virtual environment's python; this one's site-packages come after its own through
    a .pth line, so installs need no network and the scratch copy of modelspec wins."""
    venv.create(folder, with_pip=False)
    python = folder / "bin" / "python"
    target = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(target) / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def install(python: Path, target: Path, env: dict[str, str], *options: str) -> str:
    """pip (this environment's) installs `target` into the scratch environment of `python`."""
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
    return run([*pip, *options, str(target)], target.parent, env)


def user_env(bin_dir: Path, rest_of_path: str) -> dict[str, str]:
    """A user's environment: the scratch venv's bin first on PATH, no repository on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CI="1", COLUMNS="80", PATH=f"{bin_dir}{os.pathsep}{rest_of_path}")
    return env


def without_compiler(bin_dir: Path, folder: Path) -> dict[str, str]:
    """A user's environment in which no C compiler can run: CC=false and a PATH of the scratch
    venv's bin and a folder holding only `false`."""
    tools = folder / "no-compiler"
    tools.mkdir()
    (tools / "false").symlink_to(shutil.which("false") or "/bin/false")
    env = user_env(bin_dir, str(tools))
    env.update(CC="false", CXX="false")
    assert not any(shutil.which(name, path=env["PATH"]) for name in COMPILERS)
    return env
