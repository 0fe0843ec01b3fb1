"""After a plain (non-editable) install, from another folder, the quickstart works as written.

The package is built as a wheel, installed into a scratch virtual environment without the
repository on its path, and run as a user would: copy an example out, train it, evaluate it.
The scratch environment borrows this one's dependencies through a .pth line (no network).
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest

from engine import native
from tests.packaging.venvs import (
    ROOT,
    declared_kernels,
    install,
    run,
    scratch_venv,
    source_copy,
    user_env,
)


@pytest.mark.slow
def test_wheel_install_ships_the_examples(tmp_path: Path) -> None:
    source = source_copy(tmp_path)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    run([*build, "-w", str(wheels), str(source)], tmp_path, dict(os.environ))
    python = scratch_venv(tmp_path / "venv")
    wheel = next(wheels.glob("modelspec-*.whl"))
    compiled = {
        name.split("/")[-1].split(".")[0]
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("engine/native/") and name.endswith(".so")
    }
    # A compiler built the kernels for this environment, so the wheel must carry them all.
    assert compiled == (declared_kernels() if native.available() else set())
    install(python, wheel, dict(os.environ))

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = user_env(python.parent, os.environ["PATH"])
    where = run([str(python), "-c", "import modelspec; print(modelspec.__file__)"], work, env)
    assert where.startswith(str(tmp_path / "venv")), where
    loaded = "from engine import native; print(native.available())"
    assert run([str(python), "-c", loaded], work, env).strip() == str(bool(compiled))
    every_file = (
        "from modelspec.example_specs import examples, shipped_file\n"
        "for example in examples():\n"
        "    for name in example.files:\n"
        "        assert shipped_file(name).read_bytes(), name\n"
        "print(len(examples()))"
    )
    shipped = int(run([str(python), "-c", every_file], work, env))
    assert shipped == len(list((ROOT / "specs").glob("*.yaml")))
    modelspec = str(python.parent / "modelspec")
    listing = run([modelspec, "examples"], work, env)
    assert "iris_mlp" in listing
    run([modelspec, "examples", "iris_mlp", "--to", "."], work, env)
    run([modelspec, "train", "iris_mlp.yaml", "--set", "fit.epochs=2"], work, env)
    assert (work / "runs" / "iris_mlp" / "model.msz").is_file()
    evaluated = run([modelspec, "evaluate", "iris_mlp.yaml", "--format", "json"], work, env)
    assert '"accuracy"' in evaluated
