"""`modelspec serve` as a command: a real uvicorn process on 127.0.0.1, and refusals to start."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import SPECS, cli

RECORD = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
START_SECONDS = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def served(run: Path, *flags: str) -> Iterator[str]:
    """A `modelspec serve` process on a free loopback port; stopped (killed if need be) after."""
    httpx = pytest.importorskip("httpx")
    port = free_port()
    command = [sys.executable, "-m", "modelspec.cli", "serve", str(run), "--port", str(port)]
    process = subprocess.Popen(
        [*command, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=5.0).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_real_server_answers_like_predict(iris_run: Path, tmp_path: Path, workers: str) -> None:
    import httpx

    new = tmp_path / "new.csv"
    new.write_text(",".join(RECORD) + "\n" + ",".join(str(v) for v in RECORD.values()) + "\n")
    code, out, _ = cli("predict", str(iris_run), "--input", str(new))
    assert code == 0
    expected = out.splitlines()[1]
    with served(iris_run, "--workers", workers) as url:
        for _ in range(4):
            answer = httpx.post(f"{url}/predict", json=RECORD, timeout=30.0)
            assert answer.status_code == 200
            assert answer.json() == {"predictions": [{"species": expected}]}
        bad = httpx.post(f"{url}/predict", json={**RECORD, "sepal_width": "x"}, timeout=30.0)
        assert bad.status_code == 422 and "sepal_width" in bad.json()["detail"]
        assert httpx.get(f"{url}/metadata", timeout=30.0).json()["name"] == "iris_mlp"


def test_a_damaged_model_stops_serve_with_predicts_error(iris_run: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "model.msz"
    data = bytearray((iris_run / "model.msz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    code, _, err = cli("serve", str(damaged), "--port", str(free_port()))
    expected = cli("predict", str(damaged), "--input", str(SPECS / "data" / "iris_test.csv"))
    assert code == 2 and expected[0] == 2
    assert err == expected[2]
    assert str(damaged) in err


def test_no_such_model_is_exit_2(tmp_path: Path) -> None:
    code, _, err = cli("serve", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere" in err


def test_without_the_extra_serve_says_what_to_install(
    iris_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what an absent package imports as
    code, _, err = cli("serve", str(iris_run))
    assert code == 2
    assert "uvicorn" in err and "pip install 'modelspec[serve]'" in err


def test_the_cli_does_not_import_the_web_stack() -> None:
    probe = "import sys, modelspec.cli; print(sorted({'fastapi', 'uvicorn'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"
