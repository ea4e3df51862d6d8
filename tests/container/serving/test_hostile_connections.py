"""Connections that never send a complete request head (issue 14 item 2, slow clients): with
container.serving.connections.uvicorn_options() a real uvicorn server on 127.0.0.1 closes them
after the head deadline, serves everyone else meanwhile, and still passes the corpus's
connection-level cases (pipelining, HTTP versions, framing, disconnects).
"""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from container.serving.app import create_app
from container.serving.body import BodyLimits
from container.serving.connections import uvicorn_options
from container.serving.settings import ServingSettings

sys.path.insert(0, str(Path(__file__).parent))
from hostile_cases import BODY_TIMEOUT_S, CASES, Case
from hostile_server import GOOD_DEFAULT_BODY
from raw_http import exchange

HEAD_TIMEOUT_S = 1.0
CONNECTION_CATEGORIES = {"pipelining", "HTTP versions", "lying Content-Length", "disconnects",
                         "chunked over the limit", "slow clients"}


class ThreadServer:
    def __init__(self, app: object, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
            **uvicorn_options(head_timeout_s=HEAD_TIMEOUT_S),
        )
        self.server = uvicorn.Server(config)
        self.port = port
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ping", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not become healthy")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory,
                   torchscript_model_file: Path) -> Iterator[ThreadServer]:
    base = tmp_path_factory.mktemp("guarded")
    (base / "model").mkdir()
    shutil.copy(torchscript_model_file, base / "model" / "model.pt")
    settings = ServingSettings.from_environ({}, model_dir=base / "model",
                                            code_dir=base / "no-code")
    app = create_app(settings, body_limits=BodyLimits(settings.max_request_bytes,
                                                      timeout_s=BODY_TIMEOUT_S))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ThreadServer(app, port) as server:
        yield server


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_S1_connection_that_sends_nothing_is_closed_after_the_head_deadline(guarded_server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        assert _closed_within(sock, HEAD_TIMEOUT_S + 3)
    assert time.monotonic() - started >= HEAD_TIMEOUT_S * 0.9


def test_S1_slowloris_head_one_byte_at_a_time_is_closed_and_others_are_served(guarded_server):
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"y" * 100
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        sent = 0
        closed = False
        while time.monotonic() - started < HEAD_TIMEOUT_S + 3 and sent < len(head):
            try:
                sock.sendall(head[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sent += 1
            assert httpx.get(guarded_server.url + "/ping", timeout=2).status_code == 200
            time.sleep(0.2)
        closed = closed or _closed_within(sock, 1.0)
    assert closed, "the trickling connection is still open"
    assert time.monotonic() - started < HEAD_TIMEOUT_S + 3


def test_S1_kept_alive_connection_serves_requests_within_the_deadline(guarded_server):
    with httpx.Client(base_url=guarded_server.url) as client:
        for _ in range(3):
            response = client.post("/invocations", content=GOOD_DEFAULT_BODY,
                                   headers={"Content-Type": "application/json"})
            assert response.status_code == 200
            time.sleep(HEAD_TIMEOUT_S / 3)


CONNECTION_CASES = [
    pytest.param(case, id=case.id) for case in CASES
    if case.category in CONNECTION_CATEGORIES and case.expectation("default") is not None
    and not case.id.startswith("slowloris-headers")
]


@pytest.mark.parametrize("case", CONNECTION_CASES)
def test_S4_connection_cases_of_the_corpus_pass_with_the_head_deadline(guarded_server,
                                                                       case: Case):
    expected = case.expectation("default")
    assert expected is not None
    later = case.later("default")
    result = exchange(guarded_server.port, case.made_steps(), responses=1 + len(later),
                      methods=case.methods, timeout_s=case.timeout_s, hang_up=case.hang_up,
                      stop_when_answered=case.stop_when_answered)
    statuses = [response.status for response in result.responses]
    assert statuses == [want.status for want in (expected, *later) if want.status is not None]
    assert httpx.get(guarded_server.url + "/ping", timeout=5).status_code == 200


@pytest.mark.parametrize("raw", ["abc", "0", "-1"])
def test_S3_bad_body_timeout_setting_names_the_variable(raw: str):
    from container.serving.settings import SettingsError

    with pytest.raises(SettingsError, match="SMLOCAL_BODY_TIMEOUT"):
        ServingSettings.from_environ({"SMLOCAL_BODY_TIMEOUT": raw})


def test_S3_body_timeout_setting_is_read():
    assert ServingSettings.from_environ({"SMLOCAL_BODY_TIMEOUT": "2.5"}).body_timeout_s == 2.5
    assert ServingSettings.from_environ({}).body_timeout_s == 30.0
