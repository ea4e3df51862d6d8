"""harness.local_mode.signals: SIGTERM stops the SDK's work as Ctrl-C does, and a stop that the
SDK swallows is still noticed."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from harness.local_mode.signals import interruptible


def swallowing_call(work: object) -> object:
    """What SDK 2.x's telemetry decorator does around create_training_job: `return` in a
    `finally` block, which discards a KeyboardInterrupt raised inside."""
    response = None
    try:
        response = work() if callable(work) else None
    finally:
        return response  # noqa: B012


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_raises_keyboard_interrupt_and_is_remembered(signum: int) -> None:
    with pytest.raises(KeyboardInterrupt, match=signal.Signals(signum).name), \
            interruptible() as interruption:
        os.kill(os.getpid(), signum)
        signal.sigtimedwait([], 0.1)  # let the handler run
    assert interruption.signum == signum


def test_a_stop_swallowed_by_the_sdk_is_still_noticed() -> None:
    def fit() -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            threading.Event().wait(0.01)  # the SDK streaming compose's output
        return "completed"

    with interruptible() as interruption:
        result = swallowing_call(fit)
    assert result is None  # the SDK "returned" ...
    assert interruption.name == "SIGTERM"  # ... but the stop is known


def test_handlers_are_restored_after_the_block() -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with interruptible():
        pass
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
