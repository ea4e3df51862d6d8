"""Reading an /invocations body within SageMaker's size limit (S4) and a deadline.

Two things a plain `await request.body()` gets wrong with hostile or merely ordinary clients:

- Over the limit. Answering 413 as soon as the size is known is right, but many clients (urllib,
  anything that sends `Connection: close`, HTTP/1.0) write the whole body before they read a
  response. uvicorn closes such a connection as soon as the response is out, with unread bytes
  in its receive buffer; the kernel answers the client's next segment with a reset, and the
  reset destroys the 413 before the client reads it. So when the connection is to close, the
  rest of an over-limit body is read and thrown away, up to a bound, before the 413 goes out. A
  kept-alive connection needs nothing: uvicorn discards the rest of the body itself and the
  413 arrives at once. A client waiting for `100 Continue` has sent nothing: 413 and close.
- Slow clients. uvicorn has no timeout for a request body: a client that sends one byte a second
  holds its request open forever. The whole body must arrive within `timeout_s`, else 408.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from starlette.requests import ClientDisconnect

from container.serving.errors import ErrorResponse, json_error

# Enough for 6 MiB from a client on a slow link (200 KiB/s); a body that takes longer is a
# stuck or hostile client, not an upload.
# How much of an over-limit body is read and discarded so that its sender sees the 413: the
# declared sizes of real mistakes (a file a few times too big), at loopback speed a fraction of
# a second, and never held in memory.
DEFAULT_DISCARD_BYTES = 64 * 1024 * 1024
CLOSE = {"connection": "close"}


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    timeout_s: float
    discard_bytes: int = DEFAULT_DISCARD_BYTES


def _too_large(size_text: str, limit: int, *, close: bool) -> ErrorResponse:
    return json_error(
        413,
        "RequestEntityTooLargeException",
        f"the request body is {size_text} bytes; SageMaker accepts at most {limit} bytes "
        "(6 MiB) per invocation",
        headers=CLOSE if close else None,
    )


def _timed_out(received: int, limits: BodyLimits) -> ErrorResponse:
    return json_error(
        408,
        "RequestTimeoutException",
        f"the request body did not arrive within {limits.timeout_s:g} s ({received} bytes "
        "received); send the whole body at once",
        headers=CLOSE,
    )


def _disconnected(received: int) -> ErrorResponse:
    # Nobody reads this one: the client has gone. It keeps the route's return type simple.
    return json_error(
        400,
        "ClientDisconnectedException",
        f"the client closed the connection after {received} bytes of the body",
        headers=CLOSE,
    )


async def _discard(chunks: AsyncIterator[bytes], budget: int, deadline: float) -> None:
    """Read and drop the rest of the body, up to `budget` bytes and until `deadline`."""
    discarded = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in chunks:
                discarded += len(chunk)
                if discarded > budget:
                    return
    except (TimeoutError, ClientDisconnect):
        return


def _connection_closes(request: Request) -> bool:
    """Whether the server closes the connection after this response (HTTP/1.0, or the client
    said `Connection: close`), as h11 decides it."""
    if request.scope.get("http_version") == "1.0":
        return True
    tokens = request.headers.get("connection", "").lower().replace(" ", "").split(",")
    return "close" in tokens


async def read_body(request: Request, limits: BodyLimits) -> bytes | ErrorResponse:
    """S4: the body, or the error to answer (400, 408, 413), never holding more than
    `limits.max_bytes` of it in memory."""
    deadline = asyncio.get_running_loop().time() + limits.timeout_s
    declared_text = request.headers.get("content-length")
    declared: int | None = None
    if declared_text is not None:
        try:
            declared = int(declared_text)
        except ValueError:
            declared = -1
        if declared < 0:
            return json_error(
                400, "BadRequestException", f"invalid Content-Length {declared_text!r}",
                headers=CLOSE,
            )
    if declared is not None and "transfer-encoding" in request.headers:
        # RFC 9112 6.3: a request framed both ways may be an attempt at request smuggling (a
        # proxy in front reading the other framing); a server may refuse it.
        return json_error(
            400, "BadRequestException",
            "the request has both Content-Length and Transfer-Encoding; send one",
            headers=CLOSE,
        )
    closes = _connection_closes(request)
    chunks = request.stream()
    if declared is not None and declared > limits.max_bytes:
        if request.headers.get("expect", "").lower() == "100-continue":
            return _too_large(str(declared), limits.max_bytes, close=True)
        if closes and declared <= limits.max_bytes + limits.discard_bytes:
            await _discard(chunks, limits.max_bytes + limits.discard_bytes, deadline)
        return _too_large(str(declared), limits.max_bytes, close=closes)
    body = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in chunks:
                body += chunk
                if len(body) > limits.max_bytes:
                    break
            else:
                return bytes(body)
    except TimeoutError:
        return _timed_out(len(body), limits)
    except ClientDisconnect:
        return _disconnected(len(body))
    # Over the limit without a Content-Length (chunked): drop what came.
    body.clear()
    if closes:
        await _discard(chunks, limits.discard_bytes, deadline)
    return _too_large(f"more than {limits.max_bytes}", limits.max_bytes, close=closes)
