"""One contender on one workload in its own process, driven line by line by run.py.

Protocol on stdin/stdout: after the warm-up epoch it prints `ready`; each `run` line times one
epoch and prints the seconds; `quit` prints the peak resident memory in MiB and exits. A separate
process per contender keeps peak memory honest and lets the driver alternate contenders.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from typing import Any

from benchmarks.peers import CONTENDERS
from benchmarks.workloads import WORKLOADS, data


def _device(contender: str, device: str) -> Any:
    """modelspec runs on the requested device (weights, batches, kernels); peers on the CPU."""
    if contender != "modelspec":
        return contextlib.nullcontext()
    from engine import backend

    return backend.use(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", help="modelspec's device: cpu or gpu")
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    x, y = data(workload, args.quick)
    with _device(args.contender, args.device):
        epoch = CONTENDERS[args.contender](workload, x, y, args.threads)
        epoch()  # warm-up: allocation, JIT compilation, BLAS thread start
        print("ready", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "run":
                start = time.perf_counter()
                epoch()
                print(f"{time.perf_counter() - start:.6f}", flush=True)
            elif command == "quit":
                peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                print(f"{peak_kib / 1024:.1f}", flush=True)
                return


if __name__ == "__main__":
    main()
