"""A deliberately dumb HTTP/1.x client on raw sockets, for requests no HTTP library will send:
lying Content-Length, truncated bodies, pipelining, one byte a second, hanging up mid-body.

It writes exactly the bytes it is given and parses what comes back (status line, headers, a body
framed by Content-Length, chunked encoding or the close), so a test sees what the server did.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Exchange:
    """What came back on one connection."""

    responses: list[RawResponse] = field(default_factory=list)
    # The server closed the connection (EOF or reset) before the client did.
    closed_by_server: bool = False
    reset: bool = False
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Pause:
    """Sleep between two writes."""

    seconds: float


Step = bytes | Pause


def request_bytes(
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
    content_length: int | None = None,
    host: bool = True,
) -> bytes:
    """A request with the Content-Length of `body` unless one is given (possibly a lie)."""
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {path} {version}".encode("latin-1")]
    if host and "host" not in names:
        lines.append(b"Host: 127.0.0.1")
    for name, value in headers:
        lines.append(f"{name}: {value}".encode("latin-1"))
    if "transfer-encoding" not in names and "content-length" not in names:
        if content_length is not None:
            lines.append(b"Content-Length: %d" % content_length)
        elif body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(body: bytes, chunk_size: int = 65536) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + chunk_size]), body[i : i + chunk_size])
        for i in range(0, len(body), chunk_size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.eof = False
        self.reset = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self._fill():
                return None
        head, _, rest = bytes(self.buffer).partition(marker)
        self.buffer = bytearray(rest)
        return head

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _read_response(reader: _Reader, method: str) -> RawResponse | None:
    while True:
        head = reader.until(b"\r\n\r\n")
        if head is None:
            return None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            continue  # 100 Continue: the real response follows
        break
    if method == "HEAD" or status in (204, 304):
        return RawResponse(status, headers, b"")
    if "content-length" in headers:
        body = reader.exactly(int(headers["content-length"]))
        return RawResponse(status, headers, body if body is not None else b"")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = bytearray()
        while True:
            size_line = reader.until(b"\r\n")
            if size_line is None:
                break
            size = int(size_line.split(b";")[0], 16)
            chunk = reader.exactly(size + 2)
            if size == 0 or chunk is None:
                break
            parts += chunk[:-2]
        return RawResponse(status, headers, bytes(parts))
    return RawResponse(status, headers, reader.rest())


def exchange(
    port: int,
    steps: Sequence[Step],
    *,
    responses: int = 1,
    methods: Sequence[str] = ("POST",),
    timeout_s: float = 10.0,
    hang_up: str | None = None,
    stop_when_answered: bool = True,
) -> Exchange:
    """Write `steps` to a fresh connection to 127.0.0.1:`port`, then read up to `responses`
    responses (the methods tell which have no body) and whether the server closed afterwards.

    With `hang_up` the client closes right after writing and reads nothing ("fin": an orderly
    close, "rst": a reset). A client that is still writing stops as soon as the server answers,
    so a 408 or 413 is read, not lost to the reset that writing on would cause.
    """
    result = Exchange()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = _Reader(sock)
        try:
            for step in steps:
                if stop_when_answered and select.select([sock], [], [], 0)[0]:
                    break  # the server has answered (or closed): stop writing, read it
                if isinstance(step, Pause):
                    if stop_when_answered:
                        select.select([sock], [], [], step.seconds)  # wakes on an answer
                    else:
                        time.sleep(step.seconds)
                else:
                    sock.sendall(step)
        except (ConnectionResetError, BrokenPipeError):
            result.reset = True
        if hang_up:
            if hang_up == "rst":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            result.elapsed_s = time.monotonic() - started
            return result
        try:
            for index in range(responses):
                method = methods[min(index, len(methods) - 1)]
                response = _read_response(reader, method)
                if response is None:
                    break
                result.responses.append(response)
            # Closed after the last response? A short wait tells keep-alive from close.
            sock.settimeout(0.3)
            try:
                result.closed_by_server = not reader._fill() and reader.eof
            except TimeoutError:
                result.closed_by_server = False
        except TimeoutError:
            pass
        result.reset = result.reset or reader.reset
    result.elapsed_s = time.monotonic() - started
    return result
