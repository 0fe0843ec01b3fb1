"""Data-parallel throughput: samples/s on 1 and 2 ranks for W2 and W3, with the Allreduce time.

    python benchmarks/distributed.py [--quick] [--only W2 ...] [--epochs 3] [--json PATH]

Each configuration runs in its own `mpirun` job (one rank is a plain process: no MPI at all):
one warm-up epoch, then timed epochs. Rank 0 reports the median epoch's samples/s, the time per
step spent in the gradient Allreduce and in the per-step agreement (a 3-value Allreduce), and
the gradient's size. Ranks split their products over two threads as one process does
("split") or compute them whole ("whole"), since two ranks on two cores already use both.
A ping of Allreduce over sizes from 8 B to 16 MiB calibrates the cost model of
docs/scaling.md (latency and bandwidth). No thresholds: the numbers are for people.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.workloads import WORKLOADS, data  # noqa: E402
from engine.distributed.launch import mpirun_command  # noqa: E402

# (ranks, products split over two threads or whole, bucket MiB): 25 MiB holds W2's and W3's
# whole gradient (one Allreduce after the backward pass); 0.25 MiB starts W2's in 9 buckets.
CONFIGURATIONS = [(1, "split", 25.0), (2, "split", 25.0), (2, "whole", 25.0), (2, "split", 0.25)]
PING_BYTES = [8 << (2 * k) for k in range(12)]  # 8 B ... 32 MiB in factors of 4


class _Timed:
    """Wraps a method of one object, adding its wall time to a total."""

    def __init__(self, owner: Any, name: str) -> None:
        self.inner = getattr(owner, name)
        self.seconds = 0.0
        self.calls = 0
        setattr(owner, name, self)

    def __call__(self, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.inner(*args)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def rank_main(
    key: str, epochs: int, quick: bool, whole: bool, parallel: bool, bucket_mb: float
) -> None:
    from engine.build import from_spec
    from engine.callbacks import Callback
    from engine.distributed import data_parallel
    from engine.fused.gemm import whole_products

    workload = WORKLOADS[key]
    x, y = data(workload, quick)
    model = from_spec(workload.spec())
    times: list[float] = []

    class Clock(Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.start)

    session = data_parallel(bucket_mb=bucket_mb) if parallel else contextlib.nullcontext()
    products = whole_products() if whole else contextlib.nullcontext()
    with session as dp, products:
        timers = [_Timed(dp, "reduce_gradients"), _Timed(dp, "agree")] if dp else []
        model.fit(
            x, y, batch_size=workload.batch_size, epochs=1 + epochs, verbose=0, callbacks=[Clock()]
        )
        rank = dp.rank if dp else 0
        if rank == 0:
            steps = sum(t.calls for t in timers[:1]) or 1
            reduce_s = sum(t.seconds for t in timers[:1]) + (
                dp.buckets.seconds if dp and dp.buckets else 0.0
            )
            grads = sum(int(np.prod(w.shape)) for w in model.trainable_weights) * 4
            print(
                json.dumps(
                    {
                        "samples_per_s": len(x) / statistics.median(times[1:]),
                        "allreduce_ms_per_step": 1e3 * reduce_s / steps,
                        "agree_ms_per_step": 1e3 * timers[1].seconds / steps if timers else 0.0,
                        "step_ms": 1e3
                        * statistics.median(times[1:])
                        / -(-len(x) // workload.batch_size),
                        "gradient_bytes": grads,
                    }
                ),
                flush=True,
            )


def ping_main(repeats: int) -> None:
    """Median Allreduce (sum, float32, in place) time per message size on this world."""
    from engine.distributed.comm import Communicator

    comm = Communicator()
    result = {}
    for size in PING_BYTES:
        buffer = np.ones(max(size // 4, 1), np.float32)
        samples = []
        for _ in range(repeats):
            comm.world.Barrier()
            start = time.perf_counter()
            comm.allreduce_sum(buffer)
            samples.append(time.perf_counter() - start)
        result[size] = statistics.median(samples)
    if comm.rank == 0:
        print(json.dumps(result), flush=True)


def _launch(ranks: int, *args: str) -> dict[str, Any]:
    script = [sys.executable, str(Path(__file__).resolve()), *args]
    command = [*mpirun_command(ranks), *script] if ranks > 1 or "--ping" in args else script
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=ROOT, timeout=1800
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit_latency_bandwidth(ping: dict[str, float]) -> tuple[float, float]:
    """Latency: the smallest message's time; bandwidth: the largest message's bytes over the
    rest of its time (2 ranks: the ring's 2(N-1)/N is 1)."""
    sizes = sorted(ping, key=int)
    latency = ping[sizes[0]]
    return latency, int(sizes[-1]) / (ping[sizes[-1]] - latency)


def _describe(key: str, ranks: int, products: str, row: dict[str, Any]) -> str:
    return (
        f"{key} {ranks} rank(s) {products:5}: {row['samples_per_s']:9,.0f} samples/s, "
        f"step {row['step_ms']:.2f} ms, Allreduce {row['allreduce_ms_per_step']:.3f} ms/step "
        f"({row['gradient_bytes'] / 2**20:.2f} MiB), "
        f"agreement {row['agree_ms_per_step']:.3f} ms/step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one timed epoch")
    parser.add_argument("--only", nargs="+", choices=["W2", "W3"], default=["W2", "W3"])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rank", help=argparse.SUPPRESS)
    parser.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parallel", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ping", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bucket-mb", type=float, default=25.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = 1 if args.quick else args.epochs
    if args.rank:
        rank_main(args.rank, epochs, args.quick, args.whole, args.parallel, args.bucket_mb)
        return
    if args.ping:
        ping_main(5 if args.quick else 50)
        return
    quick = ["--quick"] if args.quick else []
    results: dict[str, Any] = {"machine_cores": os.cpu_count(), "workloads": {}}
    for key in args.only:
        rows = {}
        for ranks, products, bucket in CONFIGURATIONS:
            extra = [*quick, "--epochs", str(epochs), *(["--whole"] if products == "whole" else [])]
            extra += ["--parallel", "--bucket-mb", str(bucket)] if ranks > 1 else []
            label = f"{products}, {bucket} MiB buckets" if bucket != 25.0 else products
            rows[f"{ranks} rank(s), {label}"] = row = _launch(ranks, "--rank", key, *extra)
            print(_describe(key, ranks, label, row), flush=True)
        results["workloads"][key] = rows
    ping = _launch(2, "--ping", *quick)
    latency, bandwidth = fit_latency_bandwidth(ping)
    results["allreduce_ping_s"] = ping
    results["latency_s"], results["bandwidth_bytes_per_s"] = latency, bandwidth
    print(f"Allreduce on 2 ranks: latency {latency * 1e6:.1f} us, {bandwidth / 1e9:.2f} GB/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
