"""harness.local_mode.watch without Docker: the SDK call's outcome passes through unchanged, and
nothing listening means nothing to report. (A real failed load: tests/docker.)"""

from __future__ import annotations

import http.server
import socket
import threading
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


class _Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_l6_ready_on_ping_returns_before_the_sdks_next_poll() -> None:
    """The SDK waits for /ping 200, polling every 5 s; smlocal sees the same 200 within 0.1 s
    and hands back the SDK's still-running call, which the caller joins later."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    released = threading.Event()
    try:
        sdk_call = run_watching(lambda: released.wait(30), server.server_address[1],
                                ready_on_ping=True)
        assert sdk_call is not None and sdk_call.is_alive()  # returned on our poll, not the SDK's
        released.set()
        sdk_call.join(5)
        assert not sdk_call.is_alive()
    finally:
        released.set()
        server.shutdown()
        server.server_close()


def test_l6_without_ready_on_ping_the_sdks_own_call_decides() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        calls: list[str] = []

        def sdk_deploy() -> None:
            time.sleep(0.5)
            calls.append("deployed")

        assert run_watching(sdk_deploy, server.server_address[1]) is None
        assert calls == ["deployed"]
    finally:
        server.shutdown()
        server.server_close()
