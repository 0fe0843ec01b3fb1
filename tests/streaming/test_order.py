"""A stream's epoch order: a function of seed and epoch only, resumable at any batch, sharded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config.data import DataSource
from engine.streaming import Stream, open_stream
from engine.streaming.prefetch import Prefetcher
from tests.streaming.files import ROWS, SIGNATURE, write_parquet

pytest.importorskip("pyarrow")


def _stream(tmp_path: Path, buffer: int = 40) -> Stream:
    source = DataSource(**write_parquet(tmp_path), shuffle_buffer=buffer)
    return open_stream(source, tmp_path, SIGNATURE)


def _x(batches: object) -> list[np.ndarray]:
    return [b[0]["features"] for b in batches]  # type: ignore[attr-defined]


def test_same_seed_same_order_and_epochs_differ(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    first = _x(stream.batches(16, seed=3, epoch=2))
    again = _x(stream.batches(16, seed=3, epoch=2))
    other = _x(stream.batches(16, seed=3, epoch=3))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again, strict=True))
    assert first[0].tobytes() != other[0].tobytes()


@pytest.mark.parametrize("start", [1, 3, 7, 18])
def test_start_batch_continues_the_epoch(tmp_path: Path, start: int) -> None:
    stream = _stream(tmp_path)
    whole = _x(stream.batches(16, seed=9, epoch=1))
    resumed = _x(stream.batches(16, seed=9, epoch=1, start_batch=start))
    assert len(resumed) == len(whole) - start
    assert all(a.tobytes() == b.tobytes() for a, b in zip(whole[start:], resumed, strict=True))


def test_shards_are_disjoint_and_cover_the_epoch(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    seen = []
    for rank in range(3):
        shard = stream.shard(rank, 3)
        rows = np.concatenate(_x(shard.batches(16, seed=4, epoch=0)))
        assert len(rows) == shard.rows(seed=4, epoch=0)
        seen += [r.tobytes() for r in rows]
    assert len(seen) == len(set(seen)) == ROWS
    with pytest.raises(ValueError, match="rank must be"):
        stream.shard(3, 3)


def test_prefetch_hands_producer_errors_to_the_consumer() -> None:
    def broken() -> object:
        yield 1
        raise RuntimeError("disk gone")

    got = []
    with pytest.raises(RuntimeError, match="disk gone"):
        for item in Prefetcher(2).run(broken()):  # type: ignore[arg-type]
            got.append(item)
    assert got == [1]


def test_prefetch_stops_its_thread_when_the_consumer_stops() -> None:
    prefetcher = Prefetcher(2)
    items = prefetcher.run(iter(range(1000)))
    assert next(items) == 0
    items.close()
    assert prefetcher.items == 1


def test_data_parallel_ranks_read_their_own_units_in_equal_steps(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from engine.build import from_spec
    from engine.distributed.replica import DataParallel
    from engine.train.stream_data import StreamData

    @dataclass
    class OneRank:
        rank: int
        size: int

    layers = [
        {"type": "Input", "shape": [6], "name": "features"},
        {"type": "Dense", "units": 3, "name": "label"},
    ]
    spec = {"model": {"type": "sequential", "layers": layers}}
    model = from_spec(spec)
    data = StreamData(model, _stream(tmp_path))
    seen: list[bytes] = []
    steps, shares = [], []
    for rank in range(2):
        dp = DataParallel(OneRank(rank, 2))  # type: ignore[arg-type]
        mine = []
        for batch in data.shard_batches(dp, 32, seed=6, epoch=1, shuffle=True):
            mine.append(dp.share)
            if batch is not None:
                assert len(batch[0][0]) <= 16
                seen += [r.tobytes() for r in batch[0][0]]
        steps.append(len(mine))
        shares.append(mine)
    assert steps[0] == steps[1]
    assert all(abs(a + b - 1.0) < 1e-12 for a, b in zip(*shares, strict=True))
    assert len(seen) == len(set(seen)) == ROWS
