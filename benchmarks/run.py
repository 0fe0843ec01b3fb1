"""Time modelspec against PyTorch eager and Keras 3 (JAX) on the benchmark workloads, in one run.

    python benchmarks/run.py [--quick] [--only W3 ...] [--repeats 3] [--json PATH]

For each workload every contender runs in its own process: one warm-up epoch, then timed epochs
taken in turn (modelspec, modelspec without its compiled kernels, torch with 1 thread, torch
with 2 threads, keras; each round starts one contender later), so that noise on this shared
machine hits all of them alike. Each timed epoch starts after a pause of SETTLE_S: threads that
BLAS libraries and runtimes leave polling after their last call (the GEMM reading's, the
previous contender's) would otherwise take a core from whoever runs next. Reported: median
samples/s, the ratios modelspec / PyTorch (its faster thread setting) and modelspec / Keras,
peak memory of each process, the "no compiler" column (modelspec run with `MODELSPEC_NATIVE=0`,
as on a machine where `pip install` found no C compiler: samples/s and its ratio to PyTorch),
and NumPy's float32 GEMM speed, measured before each round of a workload's epochs (its median is
that workload's BLAS ceiling, so `% GEMM` compares numbers taken minutes apart, not a workload
against one reading from the start of the run). No thresholds: the numbers are for people to
read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.workloads import NAMES, WORKLOADS, Workload  # noqa: E402

# Measured: modelspec's W5 epoch took 0.411 s right after the GEMM reading and 0.368 s after a
# 0.5 s pause (medians of 6), while OpenBLAS's two threads kept polling.
SETTLE_S = 0.5


@dataclass
class Worker:
    """A running contender process and the epoch times it has reported."""

    label: str
    proc: subprocess.Popen[str]
    times: list[float] = field(default_factory=list)
    peak_mib: float = 0.0
    error: str = ""

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()


def gemm_gflops(n: int = 2048, repeats: int = 3) -> float:
    """NumPy float32 GEMM speed right now (best of a few), the machine's BLAS ceiling."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


# The label of modelspec's run without compiled kernels, and the environment that makes it.
NO_COMPILER = "modelspec-nc"
NO_COMPILER_ENV = {"MODELSPEC_NATIVE": "0"}


def contenders() -> list[tuple[str, str, int]]:
    """(label, contender, threads) for whatever is installed."""
    rows = [("modelspec", "modelspec", 2), (NO_COMPILER, "modelspec", 2)]
    if importlib.util.find_spec("torch"):
        rows += [("torch-1t", "torch", 1), ("torch-2t", "torch", 2)]
    if importlib.util.find_spec("keras") and importlib.util.find_spec("jax"):
        rows.append(("keras", "keras", 2))
    return rows


def start(
    label: str, contender: str, key: str, threads: int, quick: bool, device: str = "cpu"
) -> Worker:
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    env.update(NO_COMPILER_ENV if label == NO_COMPILER else {})
    cmd = [sys.executable, "-m", "benchmarks.worker", contender, key, "--threads", str(threads)]
    if quick:
        cmd.append("--quick")
    if contender == "modelspec":
        cmd += ["--device", device]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return Worker(label, proc)


def run_workload(w: Workload, repeats: int, quick: bool, device: str) -> dict[str, object]:
    workers = []
    for label, contender, threads in contenders():
        worker = start(label, contender, w.key, threads, quick, device)
        assert worker.proc.stdout is not None
        if worker.proc.stdout.readline().strip() != "ready":
            worker.error = (worker.proc.stderr.read() if worker.proc.stderr else "").strip()
            worker.error = worker.error.splitlines()[-1] if worker.error else "failed"
            worker.proc.kill()
        workers.append(worker)
    live = [wk for wk in workers if not wk.error]
    gemm_readings = []
    for round_ in range(repeats):
        gemm_readings.append(gemm_gflops())
        first = round_ % len(live) if live else 0
        for wk in live[first:] + live[:first]:
            time.sleep(SETTLE_S)
            wk.times.append(float(wk.ask("run")))
    for wk in live:
        wk.peak_mib = float(wk.ask("quit"))
        wk.proc.wait(timeout=60)
    n = w.quick_samples if quick else w.samples
    result: dict[str, object] = {
        "workload": w.key,
        "name": NAMES[w.key],
        "samples": n,
        "gemm_gflops": statistics.median(gemm_readings),
        "gemm_readings": gemm_readings,
    }
    for wk in workers:
        result[wk.label] = {
            "samples_per_s": n / statistics.median(wk.times) if wk.times else None,
            "epoch_seconds": wk.times,
            "peak_mib": wk.peak_mib or None,
            "error": wk.error or None,
        }
    return result


# MACs per sample of the layers fed straight by the model's input: nothing upstream needs
# their input gradient, so no library computes it, and training does 4x their MACs, not 6x
# (W2: 0.80 of its 3.21 MFLOP per sample). W4 and W6 start with an Embedding (no MACs).
INPUT_LAYER_MACS = {
    "W1": 4 * 16,
    "W2": 784 * 512,
    "W3": 26 * 26 * 32 * 9,
    "W7": 32 * 32 * 16 * 9 * 3,
}


def training_flops(w: Workload) -> int:
    """FLOPs of one training sample's products: forward 2x the MACs, the weight gradients 2x,
    the input gradients 2x except for the layers fed by the model's input."""
    return 6 * w.macs_per_sample - 2 * INPUT_LAYER_MACS.get(w.key, 0)


def _rate(result: dict[str, object], label: str) -> float | None:
    entry = result.get(label)
    return entry.get("samples_per_s") if isinstance(entry, dict) else None


def summarize(result: dict[str, object]) -> dict[str, object]:
    """Add the ratios and the BLAS-bound fraction to one workload's result."""
    gflops = float(result["gemm_gflops"])  # type: ignore[arg-type]
    w = WORKLOADS[str(result["workload"])]
    ours = _rate(result, "modelspec")
    torch_rates = [r for r in (_rate(result, "torch-1t"), _rate(result, "torch-2t")) if r]
    torch_best = max(torch_rates) if torch_rates else None
    keras = _rate(result, "keras")
    flops = 2 * w.macs_per_sample if w.mode == "predict" else training_flops(w)
    result["torch_best"] = torch_best
    result["vs_torch"] = ours / torch_best if ours and torch_best else None
    result["vs_keras"] = ours / keras if ours and keras else None
    fallback = _rate(result, NO_COMPILER)
    result["no_compiler_vs_torch"] = fallback / torch_best if fallback and torch_best else None
    result["fraction_of_gemm_bound"] = ours * flops / (gflops * 1e9) if ours else None
    return result


def _fmt(value: object, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list[dict[str, object]]) -> None:
    head = (
        f"{'workload':<22}{'modelspec/s':>12}{'torch/s':>10}{'keras/s':>10}"
        f"{'vs torch':>9}{'vs keras':>9}{'no-cc/s':>10}{'no-cc vs pt':>12}"
        f"{'GEMM GF/s':>10}{'% GEMM':>8}{'MiB ms/pt/ks':>16}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        mem = "/".join(_fmt(_mem(r, lab), ".0f") for lab in ("modelspec", "torch-2t", "keras"))
        print(
            f"{r['workload'] + ' ' + str(r['name']):<22}"
            f"{_fmt(_rate(r, 'modelspec'), ',.0f'):>12}{_fmt(r['torch_best'], ',.0f'):>10}"
            f"{_fmt(_rate(r, 'keras'), ',.0f'):>10}{_fmt(r['vs_torch'], '.2f'):>9}"
            f"{_fmt(r['vs_keras'], '.2f'):>9}{_fmt(_rate(r, NO_COMPILER), ',.0f'):>10}"
            f"{_fmt(r['no_compiler_vs_torch'], '.2f'):>12}{_fmt(r['gemm_gflops'], '.0f'):>10}"
            f"{_fmt(_pct(r['fraction_of_gemm_bound']), '.0f'):>8}{mem:>16}"
        )
        for label in ("modelspec", NO_COMPILER, "torch-1t", "torch-2t", "keras"):
            entry = r.get(label)
            if isinstance(entry, dict) and entry.get("error"):
                print(f"    {label} failed: {entry['error']}")


def _pct(x: object) -> float | None:
    return None if x is None else float(x) * 100  # type: ignore[arg-type]


def _mem(result: dict[str, object], label: str) -> float | None:
    entry = result.get(label)
    return entry.get("peak_mib") if isinstance(entry, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one repeat: a smoke test")
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), help="workloads to run")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per contender")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "gpu"], help="where modelspec runs (CuPy)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "latest.json",
        help="where to write the results",
    )
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    results = [
        summarize(run_workload(WORKLOADS[k], repeats, args.quick, args.device))
        for k in (args.only or sorted(WORKLOADS))
    ]
    print_table(results)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "device": args.device,
        "repeats": repeats,
        "gemm_gflops": statistics.median(float(r["gemm_gflops"]) for r in results),  # type: ignore[arg-type]
        "workloads": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(args.json)
    print(f"wrote {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")


if __name__ == "__main__":
    main()
