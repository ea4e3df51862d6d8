"""`http://HOST:PORT`: a serving container reached over HTTP (docker run -p, compose, serve)."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Self

import httpx

from harness.testing.target import Reply, TargetError, TargetUnreachable

# S3: the container gives up after 60 s; wait a little longer than that.
DEFAULT_TIMEOUT_S = 75.0


def request_headers(
    content_type: str | None, accept: str | None, headers: Mapping[str, str] | None
) -> dict[str, str]:
    """The request's headers; Content-Type and Accept are left out when None (S8, S9)."""
    merged = dict(headers or {})
    if content_type is not None:
        merged["Content-Type"] = content_type
    if accept is not None:
        merged["Accept"] = accept
    return merged


def without_client_defaults(
    request: httpx.Request, content_type: str | None, accept: str | None
) -> httpx.Request:
    """httpx sends `Accept: */*` unless told otherwise; a missing Accept (or Content-Type) must
    really be missing (S8, S9)."""
    if content_type is None:
        request.headers.pop("content-type", None)
    if accept is None:
        request.headers.pop("accept", None)
    return request


def to_reply(response: httpx.Response) -> Reply:
    return Reply(response.status_code, dict(response.headers), response.content)


class HttpxRequests:
    """`ping` and `invoke` as httpx requests built by `_client`; subclasses say how a request
    travels (`_call`) and what closing means."""

    _client: httpx.Client | httpx.AsyncClient

    def _call(self, request: httpx.Request) -> Reply:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def ping(self) -> Reply:
        return self._call(self._client.build_request("GET", "/ping"))

    def invoke(
        self,
        body: bytes,
        content_type: str | None = None,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        request = self._client.build_request(
            "POST", "/invocations", content=body,
            headers=request_headers(content_type, accept, headers),
        )
        return self._call(without_client_defaults(request, content_type, accept))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class HttpTarget(HttpxRequests):
    """GET /ping and POST /invocations at `base_url`."""

    _client: httpx.Client

    def __init__(self, base_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s,
                                    transport=transport)

    def __repr__(self) -> str:
        return f"HttpTarget({self.base_url!r})"

    def _call(self, request: httpx.Request) -> Reply:
        try:
            return to_reply(self._client.send(request))
        except httpx.ConnectError as exc:
            raise TargetUnreachable(f"cannot connect to {request.url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise TargetError(f"{request.method} {request.url} got no answer: "
                              f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
