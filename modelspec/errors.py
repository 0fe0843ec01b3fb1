"""The error a library function of the CLI raises for a problem the user can fix."""

from __future__ import annotations


class RunError(Exception):
    """A problem the user can fix, with the exit code it ends the command with (1 a failed
    run, 2 bad usage or an unreadable path)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
