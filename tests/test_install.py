"""After a plain (non-editable) install, from another folder, the quickstart works as written.

The package is built as a wheel, installed into a scratch virtual environment without the
repository on its path, and run as a user would: copy an example out, train it, evaluate it.
The scratch environment borrows this one's dependencies through a .pth line (no network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from engine import native

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = (".*", "build", "dist", "runs", "*.egg-info", "__pycache__", "*.so")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_wheel_install_ships_the_examples(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build leaves build/ behind, whose stale files a later
    # wheel would ship.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    _run([*build, "-w", str(wheels), str(source)], tmp_path, dict(os.environ))
    scratch = tmp_path / "venv"
    venv.create(scratch, with_pip=False)
    python = scratch / "bin" / "python"
    target = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(target) / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("modelspec-*.whl"))
    compiled = {
        name.split("/")[-1].split(".")[0]
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("engine/native/") and name.endswith(".so")
    }
    # A compiler built the kernels for this environment, so the wheel must carry them all.
    every = {source.stem for source in (ROOT / "engine" / "native").glob("_*.c")}
    assert compiled == (every if native.available() else set())
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
    _run([*install, str(wheel)], tmp_path, dict(os.environ))

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CI="1", COLUMNS="80", PATH=f"{scratch / 'bin'}{os.pathsep}{env['PATH']}")
    where = _run([str(python), "-c", "import modelspec; print(modelspec.__file__)"], work, env)
    assert where.startswith(str(scratch)), where
    loaded = "from engine import native; print(native.available())"
    assert _run([str(python), "-c", loaded], work, env).strip() == str(bool(compiled))
    every_file = (
        "from modelspec.example_specs import examples, shipped_file\n"
        "for example in examples():\n"
        "    for name in example.files:\n"
        "        assert shipped_file(name).read_bytes(), name\n"
        "print(len(examples()))"
    )
    shipped = int(_run([str(python), "-c", every_file], work, env))
    assert shipped == len(list((ROOT / "specs").glob("*.yaml")))
    modelspec = str(scratch / "bin" / "modelspec")
    listing = _run([modelspec, "examples"], work, env)
    assert "iris_mlp" in listing
    _run([modelspec, "examples", "iris_mlp", "--to", "."], work, env)
    _run([modelspec, "train", "iris_mlp.yaml", "--set", "fit.epochs=2"], work, env)
    assert (work / "runs" / "iris_mlp" / "model.msz").is_file()
    evaluated = _run([modelspec, "evaluate", "iris_mlp.yaml", "--format", "json"], work, env)
    assert '"accuracy"' in evaluated
