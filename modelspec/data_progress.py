"""How reading the data looks: a live line with the row count on a terminal, a plain line every
few seconds in a log (Slurm's output file, `| tee`), and a closing line with the rows and the
time for a pass that took a while, so a file of millions of rows never means minutes of
silence, and a small file adds no noise.

The engine reports (`engine.read_progress`); this module only words and prints the reports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.status import Status

from engine.read_progress import Action, ReadProgress, watch
from modelspec.progress import plain_output

# Seconds between two progress lines in a log; a terminal's live line changes more often.
LOG_INTERVAL = 5.0
LIVE_INTERVAL = 0.1
# A pass quicker than this ends without a closing line.
CLOSING_AFTER = 1.0

# Per action: the words while it runs, and the closing line's verb before the row count.
_WORDS: dict[Action, tuple[str, str]] = {
    "read": ("Reading {path}", "Read {rows} of {path}"),
    "count": ("Counting the rows of {path}", "Counted {rows} of {path}"),
    "labels": ("Collecting the labels of {path}", "Collected the labels of {rows} of {path}"),
    "adapt": ("Adapting preprocessing layers to {path}", "Adapted to {rows} of {path}"),
}


def running_line(report: ReadProgress) -> str:
    """`Reading data/train.csv: 1,250,000 rows`, with `of N rows (P%)` when the total is known."""
    words = _WORDS[report.action][0].format(path=report.path)
    if report.total:
        share = min(100, 100 * report.rows // report.total)
        return f"{words}: {report.rows:,} of {report.total:,} rows ({share}%)"
    return f"{words}: {report.rows:,} rows"


def closing_line(report: ReadProgress) -> str:
    """`Read 1,250,000 rows of data/train.csv in 3.2 s`."""
    rows = f"{report.rows:,} row{'s' * (report.rows != 1)}"
    return (
        f"{_WORDS[report.action][1].format(rows=rows, path=report.path)} in {report.seconds:.1f} s"
    )


class _Shown:
    """A watcher printing progress at most every `interval` seconds (on the live status line of
    a terminal, or as a line of its own in a log) and the closing line of a slow pass."""

    def __init__(self, console: Console, status: Status | None, interval: float) -> None:
        self.console = console
        self.status = status
        self.interval = interval
        self.last = time.perf_counter()

    def __call__(self, report: ReadProgress) -> None:
        if report.done:
            if report.seconds >= CLOSING_AFTER:
                self._print(closing_line(report))
            return
        now = time.perf_counter()
        if now - self.last < self.interval:
            return
        self.last = now
        if self.status is not None:
            self.status.update(running_line(report))
        else:
            self._print(running_line(report))

    def _print(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)


class _LiveWhileReading(_Shown):
    """On a terminal, a live status line only while a pass runs, so that a command drawing its
    own live display afterwards (fit's progress bar) never finds this one still running."""

    def __init__(self, console: Console) -> None:
        super().__init__(console, None, LIVE_INTERVAL)

    def __call__(self, report: ReadProgress) -> None:
        if report.done:
            self.stop()
        elif self.status is None:
            self.status = self.console.status(running_line(report), spinner="dots")
            self.status.start()
        super().__call__(report)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


@contextlib.contextmanager
def shown(console: Console, status: str) -> Iterator[None]:
    """Show the reads of the block: `status` until the first report on a terminal."""
    if plain_output(console):
        with watch(_Shown(console, None, LOG_INTERVAL)):
            yield
        return
    with (
        console.status(status, spinner="dots") as live,
        watch(_Shown(console, live, LIVE_INTERVAL)),
    ):
        yield


@contextlib.contextmanager
def shown_within(console: Console) -> Iterator[None]:
    """Show the passes over the data made inside a longer step with a live display of its own:
    fit adapting preprocessing layers to a stream before its progress bar starts."""
    watcher = _Shown(console, None, LOG_INTERVAL)
    if not plain_output(console):
        watcher = _LiveWhileReading(console)
    try:
        with watch(watcher):
            yield
    finally:
        if isinstance(watcher, _LiveWhileReading):
            watcher.stop()
