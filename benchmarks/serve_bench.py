"""Requests per second and latency of `modelspec serve` with batching off, queued-only and windowed.

Usage: `python benchmarks/serve_bench.py [--requests 600] [--repeats 3] [--runs DIR]`.
Trains the iris and digits examples (or reuses them in `--runs`). For each model and each
batching setting (off: one request per pass; queued only: a pass takes the requests that queued
during the last one; 2 ms window: and those arriving within 2 ms) it starts `modelspec serve` on
127.0.0.1 (a free port) and sends a bounded number of one-sample JSON requests from 1, 8 and 64
concurrent httpx clients. Prints a Markdown table of the medians over the repeats: requests/s,
p50 and p99 latency in milliseconds, and the server process's CPU time per request (from /proc).
The client and the server share the machine's cores, so requests/s and latency are of the pair;
the CPU column is the server's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "iris": ("iris_mlp", "iris_test.csv", "species"),
    "digits": ("digits_cnn", "digits_test.csv", "digit"),
}
CLIENTS = (1, 8, 64)
BATCHING = {
    "off": ["--max-batch", "1"],
    "queued only": ["--max-delay-ms", "0"],
    "2 ms window": ["--max-delay-ms", "2"],
}


def trained(runs: Path, spec: str) -> Path:
    out = runs / spec
    if not (out / "model.msz").is_file():
        command = [
            sys.executable,
            "-m",
            "modelspec.cli",
            "train",
            str(ROOT / "specs" / f"{spec}.yaml"),
        ]
        subprocess.run([*command, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def records(data: str, target: str) -> list[dict[str, float]]:
    with (ROOT / "specs" / "data" / data).open() as handle:
        return [
            {k: float(v) for k, v in row.items() if k != target} for row in csv.DictReader(handle)
        ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (nan where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(run: Path, batching: list[str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-m", "modelspec.cli", "serve", str(run), "--port", str(port)]
    flags = [*batching, "--log-level", "warning"]
    process = subprocess.Popen([*command, *flags], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=5.0).status_code == 200:
                    break
            if process.poll() is not None:
                raise SystemExit(
                    f"the server for {run} stopped with exit code {process.returncode}"
                )
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def drive(
    url: str, samples: list[dict[str, float]], clients: int, total: int
) -> tuple[float, list[float]]:
    """`total` requests from `clients` concurrent senders; wall seconds and each latency."""
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def sender() -> None:
            for i in counter:
                start = time.perf_counter()
                answer = await client.post("/predict", json=samples[i % len(samples)])
                latencies.append(time.perf_counter() - start)
                answer.raise_for_status()

        await client.get("/health")
        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(clients)))
        return time.perf_counter() - began, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    url: str, pid: int, samples: list[dict[str, float]], clients: int, total: int, repeats: int
) -> tuple[float, float, float, float]:
    """Medians over `repeats`: requests/s, p50 and p99 ms, server CPU ms per request."""
    asyncio.run(drive(url, samples, clients, min(total, 50)))  # warm-up
    rates, p50s, p99s, cpus = [], [], [], []
    for _ in range(repeats):
        before = cpu_seconds(pid)
        wall, latencies = asyncio.run(drive(url, samples, clients, total))
        cpus.append((cpu_seconds(pid) - before) / total * 1000)
        rates.append(total / wall)
        p50s.append(percentile(latencies, 0.50) * 1000)
        p99s.append(percentile(latencies, 0.99) * 1000)
    medians = (statistics.median(v) for v in (rates, p50s, p99s, cpus))
    return tuple(medians)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per cell (median)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "serve_bench")
    args = parser.parse_args()
    print("| model | batching | clients | requests/s | p50 ms | p99 ms | server CPU ms/request |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for model, (spec, data, target) in MODELS.items():
        run = trained(args.runs, spec)
        samples = records(data, target)
        for batching, flags in BATCHING.items():
            with server(run, flags) as (url, pid):
                for clients in CLIENTS:
                    numbers = measure(url, pid, samples, clients, args.requests, args.repeats)
                    cells = "{:.0f} | {:.1f} | {:.1f} | {:.2f}".format(*numbers)
                    print(f"| {model} | {batching} | {clients} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
