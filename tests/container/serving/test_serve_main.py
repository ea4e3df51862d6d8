"""`python -m container serve` as SageMaker starts it: the port opens at once (S1) and SIGTERM
drains in-flight requests before exiting (S5). Real processes, real sockets on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]


def start_serve(base_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SAGEMAKER_BASE_DIR": str(base_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SMLOCAL_BIND_HOST": "127.0.0.1",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "container", "serve"], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )


@pytest.fixture
def base_dir(model_dir: Path) -> Path:
    # model_dir is BASE/model, as in /opt/ml/model.
    return model_dir.parent


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def wait_until_healthy(url: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url}/ping never answered 200")


def test_s1_serve_accepts_tcp_connections_within_250_ms(
    base_dir, free_port, tmp_path, processes
):
    started = time.monotonic()
    processes.append(start_serve(base_dir, free_port, tmp_path / "serve.log"))
    while True:
        elapsed = time.monotonic() - started
        try:
            socket.create_connection(("127.0.0.1", free_port), timeout=0.05).close()
            break
        except OSError:
            assert elapsed < 5, (tmp_path / "serve.log").read_text()
            time.sleep(0.002)
    assert elapsed < 0.25, f"first TCP connection accepted after {elapsed * 1000:.0f} ms"
    # The model loads behind the open port; /ping turns 200 once it has.
    wait_until_healthy(f"http://127.0.0.1:{free_port}")


def test_s5_sigterm_finishes_in_flight_requests_then_exits(
    base_dir, model_dir, free_port, tmp_path, processes
):
    (model_dir / "code" / "inference.py").write_text(
        "import time\n\n"
        "def model_fn(model_dir):\n    return None\n\n"
        "def transform_fn(model, data, content_type, accept):\n"
        "    time.sleep(1.5)\n    return 'finished'\n"
    )
    log = tmp_path / "serve.log"
    process = start_serve(base_dir, free_port, log)
    processes.append(process)
    url = f"http://127.0.0.1:{free_port}"
    wait_until_healthy(url)
    answers: list[httpx.Response] = []
    in_flight = threading.Thread(
        target=lambda: answers.append(httpx.post(url + "/invocations", content="x", timeout=30))
    )
    in_flight.start()
    time.sleep(0.4)
    process.send_signal(signal.SIGTERM)
    in_flight.join(timeout=30)
    assert process.wait(timeout=30) == 0, log.read_text()
    assert [(answer.status_code, answer.text) for answer in answers] == [(200, "finished")]
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/ping", timeout=2)
    assert "Shutting down" in log.read_text()


def test_s1_accepted_connections_have_nagle_off():
    """bind_socket's socket says TCP, so asyncio sets TCP_NODELAY on each accepted connection:
    with Nagle on, a response written as head then body waits for the client's delayed ACK
    (40 ms per request, measured before the fix)."""
    import asyncio
    import socket

    from container.serving.main import bind_socket

    async def nodelay_of_accepted() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = bind_socket("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(nodelay_of_accepted()) != 0
