"""harness.local_mode.watch without Docker: the SDK call's outcome passes through unchanged, and
nothing listening means nothing to report. (A real failed load: tests/docker.)"""

from __future__ import annotations

import socket
import time

import pytest

from harness.local_mode.watch import load_failure, run_watching


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_nothing_listening_is_no_failure() -> None:
    assert load_failure(unused_port()) is None


def test_the_calls_result_and_errors_pass_through() -> None:
    port = unused_port()
    calls: list[str] = []
    run_watching(lambda: calls.append("deployed"), port)
    assert calls == ["deployed"]

    def giving_up() -> None:
        time.sleep(1.5)  # long enough for a probe in between
        raise RuntimeError("Giving up, endpoint didn't launch correctly")

    with pytest.raises(RuntimeError, match="Giving up"):
        run_watching(giving_up, port)
