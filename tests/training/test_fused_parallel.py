"""`engine.fused.parallel.run`: every task runs exactly once on one of two threads, errors
reach the caller, and the caller never waits for a helper that has not started."""

from __future__ import annotations

import threading

import pytest

from engine.fused import parallel


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
    release, blocked = threading.Event(), threading.Event()

    def hold_helper() -> None:
        blocked.set()
        release.wait(5)

    parallel._POOL.submit(hold_helper)
    blocked.wait(5)
    ran_on: list[str] = []
    parallel.run([lambda: ran_on.append(threading.current_thread().name)] * 2)
    release.set()
    assert ran_on == [threading.current_thread().name] * 2
