"""The host's share of a training step on an accelerator, measured on the CPU with the strict
fake device.

    python benchmarks/device_overhead.py [--only W1 W2] [--steps 64]

CuPy cannot run here, but on a GPU a step's host time is the Python that decides what to
launch, one launch per device operation, and every value read back into Python (a sync). The
fake device runs the same step with the same operations and counts them: per training step,
the device operations (ufuncs, array functions, xp calls: a kernel launch each on CuPy), the
array copies between host and device and the single values read back. It also times the step
(process CPU time, median of rounds) on the CPU and on the fake device; the fake device's
wrapper around every operation is part of its time, so that figure bounds the host time from
above. No thresholds: `tests/engine/test_fake_device_transfers.py` holds the copies at zero.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.workloads import WORKLOADS, Workload, data  # noqa: E402
from engine import backend, fake_device  # noqa: E402
from engine.build import from_spec  # noqa: E402

ROUNDS = 5


def step_seconds(w: Workload, device: str, steps: int) -> tuple[float, Any, Any, Any]:
    """Median CPU seconds per step over ROUNDS fits of `steps` steps; and the model, x, y."""
    x, y = data(w, quick=True)
    x, y = x[: steps * w.batch_size], y[: steps * w.batch_size]
    with backend.use(device):
        model = from_spec(w.spec())
        model.fit(x, y, epochs=1, batch_size=w.batch_size, verbose=0)
        times = []
        for _ in range(ROUNDS):
            start = time.process_time()
            model.fit(x, y, epochs=1, batch_size=w.batch_size, verbose=0)
            times.append((time.process_time() - start) / steps)
    return statistics.median(times), model, x, y


def per_step_counts(w: Workload, model: Any, x: Any, y: Any, steps: int) -> dict[str, float]:
    """Operations, copies and value reads per step on the fake device (fits of 1 and `steps`
    steps differenced, so fit's one upload of x and y drops out)."""
    counts = []
    for n in (1, steps):
        with backend.use("fake"):
            fake_device.TRANSFERS.clear()
            fake_device.CALLS.clear()
            model.fit(
                x[: n * w.batch_size], y[: n * w.batch_size], batch_size=w.batch_size, verbose=0
            )
            counts.append(fake_device.CALLS + fake_device.TRANSFERS)
    return {k: (counts[1][k] - counts[0][k]) / (steps - 1) for k in counts[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["W1", "W2"], choices=sorted(WORKLOADS))
    parser.add_argument("--steps", type=int, default=32, help="training steps per timed fit")
    args = parser.parse_args()
    print(f"{'workload':<10}{'cpu ms':>8}{'fake ms':>9}{'ops':>7}{'up':>5}{'down':>6}{'reads':>7}")
    for key in args.only:
        w = WORKLOADS[key]
        if w.mode != "fit":
            continue
        cpu, _, _, _ = step_seconds(w, "cpu", args.steps)
        fake, model, x, y = step_seconds(w, "fake", args.steps)
        c = per_step_counts(w, model, x, y, args.steps)
        reads = c.get("to_host", 0.0) - c.get("to_host:asnumpy", 0.0)
        print(
            f"{key:<10}{cpu * 1e3:>8.3f}{fake * 1e3:>9.3f}{c.get('device', 0):>7.0f}"
            f"{c.get('to_device', 0):>5.0f}{c.get('to_host:asnumpy', 0):>6.0f}{reads:>7.0f}"
        )


if __name__ == "__main__":
    main()
