"""MicroBatcher: a pass holds at most `max_rows` samples, and every request gets its own rows
back whichever pass it rode in (no server needed: the batcher is driven in an event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import numpy as np

from modelspec.serve.batching import MicroBatcher


def _passes(sizes: list[int], max_rows: int) -> tuple[list[int], list[np.ndarray]]:
    """The rows of each pass for requests of `sizes` rows sent together, and their answers."""
    seen: list[int] = []

    def run(x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        seen.append(len(x["x"]))
        return {"y": x["x"] * 2}

    async def send() -> list[dict[str, np.ndarray]]:
        batcher = MicroBatcher(run, max_delay=1.0, max_rows=max_rows)
        batcher.start()
        starts = np.cumsum([0, *sizes])
        requests = [
            {"x": np.arange(a, b, dtype=float)}
            for a, b in zip(starts[:-1], starts[1:], strict=True)
        ]
        try:
            return await asyncio.gather(*(batcher.predict(r) for r in requests))
        finally:
            await batcher.stop()

    answers = asyncio.run(send())
    return seen, [a["y"] for a in answers]


def test_a_pass_never_holds_more_than_max_rows() -> None:
    sizes = [200, 200, 30, 300, 10]
    seen, answers = _passes(sizes, max_rows=256)
    # the second 200 would make 400: it starts the next pass; 300 alone is over the limit
    assert seen == [200, 230, 300, 10]
    starts = np.cumsum([0, *sizes])
    for a, b, answer in zip(starts[:-1], starts[1:], answers, strict=True):
        np.testing.assert_array_equal(answer, np.arange(a, b, dtype=float) * 2)


def test_small_requests_still_share_a_pass() -> None:
    seen, _ = _passes([3, 4, 5], max_rows=256)
    assert seen == [12]
