"""The lean HTTP/1.1 client against a real socket server with the answers serving containers
give: Content-Length and chunked bodies, `Connection: close`, a 413 that closes the connection
before the body is read, keep-alive reuse."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from harness.bench.load import Budget, run_level
from harness.bench.rawhttp import RawHttpDriver
from harness.bench.stats import LevelStats
from harness.bench.workload import BenchRequest

SMALL = BenchRequest(b'"a sentence"')
BIG = BenchRequest(b"x" * (6 * 1024 * 1024 + 1), label="oversized")


@dataclass
class Server:
    """Answers each request by `mode`: `length`, `chunked`, `close` (Connection: close), and a
    413 without reading the body (then closes) for bodies over 1 MiB."""

    mode: str
    port: int = 0
    connections: int = 0
    requests: list[int] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                self.requests.append(length)
                if length > 2**20:
                    writer.write(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n")
                    await writer.drain()
                    return
                await reader.readexactly(length)
                if self.mode == "chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                 b"5\r\n[[0.1\r\n7\r\n, 0.2]]\r\n0\r\n\r\n")
                elif self.mode == "close":
                    writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2"
                                 b"\r\n\r\n[]")
                    await writer.drain()
                    return
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture
def server(request) -> Iterator[Server]:
    state = Server(request.param)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        state.port = listener.sockets[0].getsockname()[1]
        started.set()
        await stop.wait()
        listener.close()
        await listener.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield state
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def sweep(server: Server, requests: list[BenchRequest], concurrency: int,
          count: int) -> LevelStats:
    driver = RawHttpDriver(f"http://127.0.0.1:{server.port}")
    return LevelStats.of(run_level(driver, requests, concurrency, Budget(requests=count)))


@pytest.mark.parametrize("server", ["length"], indirect=True)
def test_keep_alive_opens_one_connection_per_request_in_flight(server):
    stats = sweep(server, [SMALL], 4, 40)
    assert stats.outcomes == {"200": 40}
    assert server.connections == 4


@pytest.mark.parametrize("server", ["chunked"], indirect=True)
def test_chunked_bodies_are_read_to_the_end(server):
    stats = sweep(server, [SMALL], 2, 20)
    assert stats.outcomes == {"200": 20}
    assert server.connections == 2


@pytest.mark.parametrize("server", ["close"], indirect=True)
def test_connection_close_gets_a_new_connection(server):
    stats = sweep(server, [SMALL], 2, 10)
    assert stats.outcomes == {"200": 10}
    assert server.connections == 10


@pytest.mark.parametrize("server", ["length"], indirect=True)
def test_a_413_that_closes_the_connection_costs_no_other_request(server):
    stats = sweep(server, [SMALL, SMALL, BIG], 2, 30)
    assert stats.outcomes == {"200": 20, "413": 10}


def test_a_closed_port_is_no_answer(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stats = LevelStats.of(run_level(RawHttpDriver(f"http://127.0.0.1:{port}"), [SMALL], 1,
                                    Budget(requests=3)))
    assert stats.outcomes == {"ConnectionRefusedError": 3}
