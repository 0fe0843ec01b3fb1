"""Set-up shared by every test folder."""

from __future__ import annotations

import signal

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the tests as it reaches a user's terminal. A shell that starts a job in
    the background (`cmd &`, nohup) hands it SIGINT ignored, Python keeps it ignored, and the
    processes the tests start inherit that: the tests of Ctrl-C handling would see no signal."""
    del config
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
