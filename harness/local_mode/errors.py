"""The error of every local-mode step: a CommandError, so the CLI prints it as one line."""

from __future__ import annotations

from harness.errors import CommandError


class LocalModeError(CommandError):
    """A local-mode job or endpoint that could not start (exit 2) or that failed (exit 1)."""
