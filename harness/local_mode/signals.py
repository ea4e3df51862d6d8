"""Ctrl-C and SIGTERM while the SDK runs a job or an endpoint: noticed, and never lost.

The SDK runs `docker-compose up` as a child process and leaves stopping it to whoever interrupts
it. Two things stand in the way of a clean stop:

- SIGTERM's default action ends the process at once, leaving compose and its containers
  running; so within `interruptible()`, SIGTERM raises KeyboardInterrupt as Ctrl-C does, and
  one clean-up path serves both;
- SDK 2.x's telemetry decorator around `create_training_job` returns from a `finally` block
  (sagemaker/telemetry/telemetry_logging.py), which swallows a KeyboardInterrupt raised inside
  `fit()`: the interrupted job then "completes". So the signal is also remembered, and the
  caller checks `Interruption.signum` once the SDK returns.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Interruption:
    signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def interruptible() -> Iterator[Interruption]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt in the main thread and are
    recorded in the yielded Interruption (elsewhere than the main thread: nothing changes)."""
    interruption = Interruption()
    if threading.current_thread() is not threading.main_thread():
        yield interruption
        return

    def interrupt(signum: int, _frame: object) -> None:
        if interruption.signum is None:
            interruption.signum = signum
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interruption
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
