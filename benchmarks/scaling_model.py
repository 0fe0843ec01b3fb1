"""Predicted data-parallel speed-up from the ring Allreduce cost model of docs/scaling.md.

    python benchmarks/scaling_model.py [RESULTS.json]

Per step, N ranks each compute on their own batch and then sum the gradient (G bytes) around a
ring: 2(N-1) steps, each sending G/N bytes and paying the link latency, so
    allreduce(N) = 2(N-1)/N * G / bandwidth + 2(N-1) * latency,
plus the step's agreement (3 numbers: a non-finite loss, a stop, Ctrl-C), a small Allreduce by
recursive doubling: log2(N) * latency.
Weak scaling keeps each rank's batch at the spec's batch_size (the global batch grows with N):
speed-up = N * t1 / (t1 + allreduce). Strong scaling keeps the global batch: each rank computes
1/N of it (assumed perfectly efficient, which small per-rank batches are not):
speed-up = t1 / (t1 / N + allreduce). t1 is one process's measured step time; RESULTS is the
JSON of benchmarks/distributed.py (else the step times below, measured 2026-12-07).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

# (step seconds on one process at the spec's batch, gradient bytes, batch size): W2 and W3 from
# benchmarks/distributed.py on the 2-core machine; digits_cnn (specs/) from one process's fit.
MODELS = {
    "W2 mnist_mlp": (2.56e-3, 535_818 * 4, 128),
    "W3 mnist_cnn": (30.0e-3, 34_826 * 4, 128),
    "digits_cnn (specs/)": (1.8e-3, 38_282 * 4, 32),
}
# Links: Gb/s and a per-message latency typical of that class of network (TCP on 10 GbE;
# RDMA on 100 Gb/s InfiniBand or RoCE).
LINKS = {"10 Gb/s": (10e9 / 8, 30e-6), "100 Gb/s": (100e9 / 8, 3e-6)}
NODES = (8, 64, 512)


def allreduce_seconds(nodes: int, gradient_bytes: float, bandwidth: float, latency: float) -> float:
    ring = 2 * (nodes - 1) / nodes * gradient_bytes / bandwidth + 2 * (nodes - 1) * latency
    return ring + math.log2(nodes) * latency


def table(models: dict[str, tuple[float, int, int]]) -> str:
    lines = [
        "| model | link | Allreduce ms (8 / 64 / 512) | weak speed-up (8 / 64 / 512) "
        "| strong speed-up (8 / 64) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, (step, grad, batch) in models.items():
        for link, (bandwidth, latency) in LINKS.items():
            ar = [allreduce_seconds(n, grad, bandwidth, latency) for n in NODES]
            weak = [n * step / (step + a) for n, a in zip(NODES, ar, strict=True)]
            strong = [
                f"{step / (step / n + a):.1f}" if batch % n == 0 else "-"
                for n, a in zip(NODES[:2], ar, strict=False)
            ]
            lines.append(
                f"| {name} | {link} | {' / '.join(f'{a * 1e3:.2f}' for a in ar)} | "
                f"{' / '.join(f'{w:.1f}' for w in weak)} | {' / '.join(strong)} |"
            )
    return "\n".join(lines)


def main() -> None:
    models = dict(MODELS)
    if len(sys.argv) > 1:
        results = json.loads(Path(sys.argv[1]).read_text())["workloads"]
        for key, name in (("W2", "W2 mnist_mlp"), ("W3", "W3 mnist_cnn")):
            if key in results:
                row = results[key]["1 rank(s), split"]
                models[name] = (row["step_ms"] / 1e3, row["gradient_bytes"], 128)
    print(table(models))


if __name__ == "__main__":
    main()
