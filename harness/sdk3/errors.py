"""The error of every SDK 3.x step: a CommandError, so the CLI prints it as one line."""

from __future__ import annotations

from harness.errors import CommandError


class Sdk3Error(CommandError):
    """A 3.x job or endpoint that could not start (exit 2) or that failed (exit 1)."""
