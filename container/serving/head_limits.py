"""Limits on a request's line and headers, answered with their own clear status.

uvicorn's h11 parser refuses a request head over 16 KiB only while it is incomplete: a larger
head that arrives in one read goes through, so whether a 64 KiB header is refused depended on
how the kernel cut the stream. This middleware makes the answer the same every time: 414 for a
target over MAX_TARGET_BYTES, 431 for headers over MAX_HEADER_BYTES in all or over
MAX_HEADER_COUNT of them, and 505 for an HTTP version other than 1.0 and 1.1 (h11 reads
`HTTP/2.0` in a request line as a version it can serve).
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from container.serving.errors import ErrorResponse, json_error

MAX_TARGET_BYTES = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_COUNT = 200
HTTP_VERSIONS = ("1.0", "1.1")


def head_problem(scope: Scope) -> ErrorResponse | None:
    """What is wrong with the request line or headers of `scope`, as the error to answer."""
    version = scope.get("http_version", "1.1")
    if version not in HTTP_VERSIONS:
        return json_error(
            505, "HttpVersionNotSupportedException",
            f"HTTP/{version} is not supported; send HTTP/1.1", headers={"connection": "close"},
        )
    target = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
    if target > MAX_TARGET_BYTES:
        return json_error(
            414, "UriTooLongException",
            f"the request target is {target} bytes; at most {MAX_TARGET_BYTES} are accepted",
            headers={"connection": "close"},
        )
    headers = scope.get("headers", [])
    if len(headers) > MAX_HEADER_COUNT:
        return json_error(
            431, "RequestHeaderFieldsTooLargeException",
            f"the request has {len(headers)} headers; at most {MAX_HEADER_COUNT} are accepted",
            headers={"connection": "close"},
        )
    size = sum(len(name) + len(value) + 4 for name, value in headers)
    if size > MAX_HEADER_BYTES:
        return json_error(
            431, "RequestHeaderFieldsTooLargeException",
            f"the request headers are {size} bytes; at most {MAX_HEADER_BYTES} are accepted",
            headers={"connection": "close"},
        )
    return None


class HeadLimits:
    """ASGI middleware: refuse a request whose head breaks the limits before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = head_problem(scope)
            if problem is not None:
                response = Response(
                    problem.body, status_code=problem.status_code,
                    headers={"content-type": problem.media_type, **problem.headers},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
