"""How benchmark requests travel to each kind of target, asynchronously (the `Driver`s of
harness.bench.sending).

A driver runs a job on an event loop with a `Send` function that can have `concurrency`
requests in flight at once: for a server's URL, harness.bench.rawhttp's lean client, or one
httpx AsyncClient whose connection pool is exactly that size (so it never queues for a
connection and never opens more than it uses); in-process, an httpx client on the app's own
loop; for a real endpoint, boto3 calls on a thread pool of that size (boto3 is synchronous),
with a connection pool to match.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import httpx

from harness.bench.rawhttp import RawHttpDriver
from harness.bench.sending import Driver, Job, NoAnswer, T
from harness.bench.workload import BenchRequest
from harness.testing.asgi import BASE_URL, AsgiTarget
from harness.testing.endpoint import READ_TIMEOUT_S, EndpointTarget
from harness.testing.http import DEFAULT_TIMEOUT_S, request_headers, without_client_defaults
from harness.testing.target import TargetError
from harness.testing.targets import AnyTarget

# botocore keeps 10 connections per client unless told otherwise.
BOTOCORE_DEFAULT_POOL = 10
Client = Literal["auto", "httpx", "raw"]


def _no_answer(exc: httpx.HTTPError) -> NoAnswer:
    return NoAnswer(type(exc).__name__)


async def _httpx_session(client_factory: Callable[[httpx.Limits], httpx.AsyncClient],
                         concurrency: int, job: Job[T]) -> T:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with client_factory(limits) as client:

        async def send(request: BenchRequest) -> int:
            built = client.build_request(
                "POST", "/invocations", content=request.body,
                headers=request_headers(request.content_type, request.accept, None),
            )
            built = without_client_defaults(built, request.content_type, request.accept)
            try:
                response = await client.send(built)
            except httpx.HTTPError as exc:
                raise _no_answer(exc) from exc
            return response.status_code

        return await job(send)


class HttpDriver:
    """A container or server at `base_url` (http://HOST:PORT)."""

    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _client(self, limits: httpx.Limits) -> httpx.AsyncClient:
        # The pool never waits: it has a connection for each user.
        timeout = httpx.Timeout(self.timeout_s, pool=None)
        return httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=timeout)

    def run(self, concurrency: int, job: Job[T]) -> T:
        return asyncio.run(_httpx_session(self._client, concurrency, job))

    def close(self) -> None:
        """Nothing outlives a run."""


class AsgiDriver:
    """The serving app in this process: requests go through httpx's ASGI transport on the
    app's own event loop (the loop its runtime and workers belong to)."""

    def __init__(self, target: AsgiTarget, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.target = target
        self.timeout_s = timeout_s

    def _client(self, limits: httpx.Limits) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.target.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, limits=limits,
                                 timeout=self.timeout_s)

    def run(self, concurrency: int, job: Job[T]) -> T:
        return self.target.call(functools.partial(_httpx_session, self._client, concurrency, job))

    def close(self) -> None:
        self.target.close()


class EndpointDriver:
    """A real endpoint: invoke_endpoint on `concurrency` threads."""

    def __init__(self, target: EndpointTarget, *, region: str | None,
                 max_concurrency: int) -> None:
        if max_concurrency > BOTOCORE_DEFAULT_POOL:
            target = self._with_pool(target, region, max_concurrency)
        self.target = target

    @staticmethod
    def _with_pool(target: EndpointTarget, region: str | None, size: int) -> EndpointTarget:
        """The same endpoint with a runtime client that keeps `size` connections (as the
        target's own: one attempt, the same read timeout)."""
        import boto3
        from botocore.config import Config

        config = Config(read_timeout=READ_TIMEOUT_S, retries={"total_max_attempts": 1},
                        max_pool_connections=size)
        runtime = boto3.session.Session(region_name=region).client("sagemaker-runtime",
                                                                   config=config)
        target.close()
        return EndpointTarget(target.endpoint_name, region=region, runtime_client=runtime)

    async def _session(self, concurrency: int, job: Job[T]) -> T:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=concurrency,
                                thread_name_prefix="smlocal-bench") as pool:

            async def send(request: BenchRequest) -> int:
                call = functools.partial(self.target.invoke, request.body,
                                         request.content_type, request.accept)
                try:
                    reply = await loop.run_in_executor(pool, call)
                except TargetError as exc:
                    raise NoAnswer(str(exc)) from exc
                return reply.status

            return await job(send)

    def run(self, concurrency: int, job: Job[T]) -> T:
        return asyncio.run(self._session(concurrency, job))

    def close(self) -> None:
        self.target.close()


def http_driver(base_url: str, client: Client = "auto") -> Driver:
    """`raw` (harness.bench.rawhttp: a few tens of microseconds of CPU per request) or `httpx`
    (most of a millisecond, which a small machine takes from the server under test); `auto`
    is raw for plain http, httpx for https."""
    if client == "raw" or (client == "auto" and base_url.startswith("http://")):
        return RawHttpDriver(base_url)
    return HttpDriver(base_url)


def driver_for(target: AnyTarget, *, region: str | None = None, max_concurrency: int = 1,
               client: Client = "auto") -> Driver:
    """The driver of a target `harness.testing.targets.open_target` opened; the driver owns it
    from then on (closing the driver closes the target). `client` chooses the HTTP client for
    a server's URL."""
    if isinstance(target, AsgiTarget):
        return AsgiDriver(target)
    if isinstance(target, EndpointTarget):
        return EndpointDriver(target, region=region, max_concurrency=max_concurrency)
    driver = http_driver(target.base_url, client)
    target.close()
    return driver
