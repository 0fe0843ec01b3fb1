"""`engine.fused.parallel.run`: every task runs exactly once on one of two threads, errors
reach the caller, and the caller never waits for a helper that has not started."""

from __future__ import annotations

import threading

import pytest

from engine.fused import parallel
from tests.training.busy_helper import helper_busy


@pytest.mark.parametrize("count", [0, 1, 2, 5])
def test_every_task_runs_exactly_once(count: int) -> None:
    runs: list[int] = []
    lock = threading.Lock()

    def task(i: int) -> None:
        with lock:
            runs.append(i)

    parallel.run([lambda i=i: task(i) for i in range(count)])
    assert sorted(runs) == list(range(count))


def test_a_task_error_is_raised_on_the_calling_thread() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        parallel.run([fail, lambda: None])


def test_the_caller_runs_all_tasks_while_the_helper_is_busy() -> None:
    ran_on: list[str] = []
    with helper_busy():
        parallel.run([lambda: ran_on.append(threading.current_thread().name)] * 2)
    assert ran_on == [threading.current_thread().name] * 2


@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_share_runs_every_item_once_with_one_worker_per_thread(count: int) -> None:
    runs: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def worker(k: int, item: int) -> None:
        with lock:
            runs.append((item, k, threading.current_thread().name))

    parallel.share(count, [lambda i, k=k: worker(k, i) for k in range(2)])
    assert sorted(item for item, _, _ in runs) == list(range(count))
    threads_per_worker = {k: {t for _, w, t in runs if w == k} for k in range(2)}
    assert all(len(threads) <= 1 for threads in threads_per_worker.values())


def test_share_stops_the_other_worker_after_an_error() -> None:
    done: list[int] = []

    def fail(item: int) -> None:
        raise ValueError(f"item {item}")

    def slow(item: int) -> None:
        done.append(item)
        threading.Event().wait(0.01)

    with pytest.raises(ValueError, match="item"):
        parallel.share(50, [fail, slow])
    assert len(done) < 49


def test_share_runs_everything_on_the_caller_while_the_helper_is_busy() -> None:
    ran_on: set[str] = set()
    with helper_busy():
        parallel.share(6, [lambda i: ran_on.add(threading.current_thread().name)] * 2)
    assert ran_on == {threading.current_thread().name}
