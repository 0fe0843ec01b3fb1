"""Streaming benchmark: W2's model trained on a float32 data set of about 2 GB read from disk
(NPY memory-mapped, Parquet row groups) against the in-memory path on the same data.

    python benchmarks/streaming.py [--gb 2.0] [--dir DIR] [--quick]

The headline, throughput, is measured fairly: epochs of the three paths taken in turn in one
process (the median of `--rounds` each), so the shared machine's drift hits all three alike.
Peak resident memory comes from one epoch per path over the whole data set, each in its own
process so that its peak RSS is its own (their speeds are printed too, but processes run minutes
apart on a machine whose speed drifts, so they are not the comparison). `--quick` checks the
benchmark end to end on 50 MB in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

WIDTH, CLASSES, ROW_GROUP = 784, 10, 8192
SPEC = Path(__file__).parent / "workloads" / "mnist_mlp.yaml"


def write_data(folder: Path, gigabytes: float) -> int:
    """x.npy, y.npy and data.parquet (x as a fixed-size list column), written in slices."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = int(gigabytes * 1e9 / (WIDTH * 4)) // ROW_GROUP * ROW_GROUP
    x_file = np.lib.format.open_memmap(folder / "x.npy", "w+", np.float32, (rows, WIDTH))
    y_all = np.random.default_rng(1).integers(0, CLASSES, rows)
    np.save(folder / "y.npy", y_all)
    schema = pa.schema([("x", pa.list_(pa.float32(), WIDTH)), ("y", pa.int64())])
    with pq.ParquetWriter(folder / "data.parquet", schema, compression="none") as writer:
        for start in range(0, rows, ROW_GROUP):
            rng = np.random.default_rng([2, start])
            x = rng.random((ROW_GROUP, WIDTH), dtype=np.float32)
            x_file[start : start + ROW_GROUP] = x
            column = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), WIDTH)
            y = pa.array(y_all[start : start + ROW_GROUP])
            writer.write_table(pa.table({"x": column, "y": y}), row_group_size=ROW_GROUP)
    x_file.flush()
    del x_file
    return rows


def _model() -> Any:
    from engine.build import from_spec

    return from_spec(yaml.safe_load(SPEC.read_text()))


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss would carry the parent's peak
    across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, folder: Path, memory_rows: int) -> dict[str, Any]:
    """One epoch in this process: `npy` or `parquet` streamed, or `memory` on arrays."""
    from engine.config.data import DataSource
    from engine.data import InputSpec, ModelSignature, OutputSpec
    from engine.streaming import open_stream

    model = _model()
    batch = int(yaml.safe_load(SPEC.read_text())["fit"]["batch_size"])
    signature = ModelSignature(
        (InputSpec(model.input_names[0], (WIDTH,)),),
        (OutputSpec(model.output_names[0], (CLASSES,), "sparse_categorical_crossentropy"),),
    )
    if mode == "memory":
        rows = memory_rows or None
        x = np.load(folder / "x.npy", mmap_mode="r")[:rows].copy()
        y = np.load(folder / "y.npy")[:rows].copy()
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
        seconds, rows, waited = time.perf_counter() - start, len(x), 0.0
    else:
        source = (
            DataSource(path="x.npy", y="y.npy", streaming=True)
            if mode == "npy"
            else DataSource(path="data.parquet", x="x", target="y", streaming=True)
        )
        stream = open_stream(source, folder, signature)
        start = time.perf_counter()
        model.fit(stream, epochs=1, batch_size=batch, verbose=0)
        seconds, rows = time.perf_counter() - start, len(stream)
        waited = stream.prefetcher.waited
    peak = _peak_rss_mb()
    return {
        "mode": mode,
        "rows": rows,
        "seconds": seconds,
        "samples_per_s": rows / seconds,
        "peak_rss_mb": peak,
        "waited_s": waited,
    }


def alternate(folder: Path, rows: int, rounds: int) -> dict[str, float]:
    """Median samples/s of the three paths over the first `rows` rows, epochs taken in turn
    in one process, so that the shared machine's drift hits all three alike."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.config.data import DataSource
    from engine.data import InputSpec, ModelSignature, OutputSpec
    from engine.streaming import open_stream

    x = np.load(folder / "x.npy", mmap_mode="r")[:rows].copy()
    y = np.load(folder / "y.npy")[:rows].copy()
    part = folder / "slice"
    part.mkdir()
    np.save(part / "x.npy", x)
    np.save(part / "y.npy", y)
    column = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), WIDTH)
    pq.write_table(pa.table({"x": column, "y": y}), part / "d.parquet", row_group_size=ROW_GROUP)
    batch = int(yaml.safe_load(SPEC.read_text())["fit"]["batch_size"])
    models = {name: _model() for name in ("memory", "npy", "parquet")}
    name = models["memory"]
    signature = ModelSignature(
        (InputSpec(name.input_names[0], (WIDTH,)),),
        (OutputSpec(name.output_names[0], (CLASSES,), "sparse_categorical_crossentropy"),),
    )
    sources = {
        "npy": DataSource(path="x.npy", y="y.npy", streaming=True),
        "parquet": DataSource(path="d.parquet", x="x", target="y", streaming=True),
    }
    data: dict[str, dict[str, Any]] = {"memory": {"x": x, "y": y}}
    data.update({k: {"x": open_stream(v, part, signature)} for k, v in sources.items()})
    speeds: dict[str, list[float]] = {k: [] for k in models}
    for r in range(rounds):
        order = list(models)[r % 3 :] + list(models)[: r % 3]
        for key in order:
            time.sleep(0.5)
            start = time.perf_counter()
            models[key].fit(**data[key], epochs=1, batch_size=batch, verbose=0)
            speeds[key].append(rows / (time.perf_counter() - start))
    return {k: float(np.median(v)) for k, v in speeds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--memory-rows", type=int, default=0, help="0: every row")
    parser.add_argument("--modes", default="memory,npy,parquet")
    parser.add_argument("--child", default=None)
    parser.add_argument("--alternate-rows", type=int, default=65536)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="50 MB, 8192 rows in turn, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.gb, args.alternate_rows, args.rounds = 0.05, ROW_GROUP, 2
    if args.child == "alternate":
        print(json.dumps(alternate(args.dir, args.alternate_rows, args.rounds)))
        return
    if args.child:
        print(json.dumps(child(args.child, args.dir, args.memory_rows)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        rows = write_data(folder, args.gb)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e9
        print(f"wrote {rows} rows, {size:.2f} GB on disk (NPY and Parquet) to {folder}")
        command = [sys.executable, __file__, "--child", "alternate", "--dir", str(folder)]
        command += ["--alternate-rows", str(args.alternate_rows), "--rounds", str(args.rounds)]
        medians = _last_json(command)
        results = []
        for mode in args.modes.split(","):
            command = [sys.executable, __file__, "--child", mode, "--dir", str(folder)]
            results.append(_last_json([*command, "--memory-rows", str(args.memory_rows)]))
    print(
        f"\nThroughput: epochs of the three paths in turn in one process, first "
        f"{args.alternate_rows} rows, median of {args.rounds}:"
    )
    print("| path | samples/s | vs memory |\n|---|---|---|")
    for key, speed in medians.items():
        print(f"| {key} | {speed:.0f} | {speed / medians['memory']:.3f} |")
    base = max((r["samples_per_s"] for r in results if r["mode"] == "memory"), default=1.0)
    print("\nMemory: one epoch over every row per path, each in its own process")
    print("(samples/s here drift with the machine between processes; not the comparison):")
    print("| path | rows | epoch s | samples/s | vs memory | peak RSS MB | step waited s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['rows']} | {r['seconds']:.1f} | {r['samples_per_s']:.0f} | "
            f"{r['samples_per_s'] / base:.2f} | {r['peak_rss_mb']:.0f} | {r['waited_s']:.2f} |"
        )


def _last_json(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
