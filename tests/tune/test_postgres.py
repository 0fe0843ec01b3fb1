"""Two workers on one PostgreSQL study, on a throwaway server from Debian's `postgresql` package.

Skips where the server binaries, the `postgres` system user (initdb refuses root) or psycopg is
missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tune.conftest import SPEC, write_spec
from tests.tune.test_search import _rows

pytest.importorskip("psycopg")
BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
PORT = "54329"


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture
def server() -> Iterator[str]:
    if not BIN or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries")
    binaries = Path(BIN[-1])
    folder = Path(tempfile.mkdtemp(prefix="modelspec-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    options = f"-k {folder} -p {PORT} -c listen_addresses=''"
    run = {"check": True, "capture_output": True}
    subprocess.run(_as_postgres(str(binaries / "initdb"), "-D", str(data), "-A", "trust"), **run)
    start = ["-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(_as_postgres(str(binaries / "pg_ctl"), *start), **run)
    try:
        create = ["-h", str(folder), "-p", PORT, "-U", "postgres", "tune"]
        subprocess.run(_as_postgres(str(binaries / "createdb"), *create), **run)
        yield f"postgresql+psycopg://postgres@/tune?host={folder}&port={PORT}"
    finally:
        stop = ["-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_postgres(str(binaries / "pg_ctl"), *stop), check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(server: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {**SPEC, "tune": {**SPEC["tune"], "n_trials": 4}})
    out = tmp_path / "search"
    flags = ["--out", str(out), "--storage", server, "--study", "shared"]
    command = [sys.executable, "-m", "modelspec.cli", "tune", str(spec), *flags]
    workers = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [w.communicate()[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    rows = _rows(out)
    assert [int(r["trial"]) for r in rows] == list(range(len(rows))) and 4 <= len(rows) <= 5
    assert not (out / "study.db").exists()  # the study lives in the server, not the folder
