"""A lean HTTP/1.1 client for the load generator: asyncio streams, keep-alive, one connection per
request in flight, the request written in one piece.

Why: httpx costs this process most of a millisecond of CPU per request (its layers of request,
transport and pool objects), which on a small machine is CPU taken from the server under test;
this client costs a few tens of microseconds (`python -m harness.benchmarks.serving_generator`
measures both). It understands what serving containers answer (Content-Length or chunked
bodies, `Connection: close`) and nothing more: no TLS, redirects, proxies or compression.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from harness.bench.sending import Job, NoAnswer, T
from harness.bench.workload import BenchRequest

MAX_HEAD_BYTES = 64 * 1024
INVOCATIONS = "/invocations"


class ProtocolError(Exception):
    """An answer this client cannot read."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    def close(self) -> None:
        self.writer.close()


def request_bytes(host: str, request: BenchRequest) -> bytes:
    head = [f"POST {INVOCATIONS} HTTP/1.1", f"Host: {host}",
            f"Content-Length: {len(request.body)}"]
    if request.content_type is not None:
        head.append(f"Content-Type: {request.content_type}")
    if request.accept is not None:
        head.append(f"Accept: {request.accept}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body


async def read_response(connection: Connection) -> int:
    """The status; the body is read and dropped, so the connection can carry the next one."""
    reader = connection.reader
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
        connection.reusable = False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif status >= 200 and status not in (204, 304):
        # No length: the body runs to the end of the connection.
        await reader.read()
        connection.reusable = False
    return status


class RawHttpDriver:
    """A container or server at `base_url` (http://HOST:PORT), through `Connection`s."""

    def __init__(self, base_url: str, timeout_s: float = 75.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the raw client speaks plain http only, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc
        self.timeout_s = timeout_s

    async def _session(self, concurrency: int, job: Job[T]) -> T:
        idle: list[Connection] = []

        async def exchange(connection: Connection, payload: bytes) -> int:
            connection.writer.write(payload)
            return await asyncio.wait_for(read_response(connection), self.timeout_s)

        async def send(request: BenchRequest) -> int:
            payload = request_bytes(self.host_header, request)
            connection = idle.pop() if idle else None
            try:
                if connection is not None:
                    try:
                        status = await exchange(connection, payload)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        # A kept-alive connection the server had closed meanwhile (after a
                        # 413, or idle): the request is sent again on a new one, as browsers
                        # and httpx do.
                        connection.close()
                        connection = None
                if connection is None:
                    reader, writer = await asyncio.open_connection(
                        self.host, self.port, limit=MAX_HEAD_BYTES)
                    connection = Connection(reader, writer)
                    status = await exchange(connection, payload)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError, ProtocolError, ValueError) as exc:
                if connection is not None:
                    connection.close()
                raise NoAnswer(type(exc).__name__) from exc
            if connection.reusable and len(idle) < concurrency:
                idle.append(connection)
            else:
                connection.close()
            return status

        try:
            return await job(send)
        finally:
            for connection in idle:
                connection.close()

    def run(self, concurrency: int, job: Job[T]) -> T:
        return asyncio.run(self._session(concurrency, job))

    def close(self) -> None:
        """Nothing outlives a run."""
