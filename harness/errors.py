"""The one error type the CLI turns into an exit code and a one-line cause."""

from __future__ import annotations


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit code `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
