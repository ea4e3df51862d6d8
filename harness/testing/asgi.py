"""`asgi`: the serving app in this process, behind httpx's ASGI transport.

The app runs on an event loop in a background thread (an anyio blocking portal), lifespan
included, so the model loads exactly as in the container and the target stays synchronous like
the others. `AsgiTarget.serving(model_dir, code_dir)` builds the app that `serve` runs.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from container.serving.runtime import ModelState, ServingRuntime
from container.serving.settings import ServingSettings
from harness.testing.http import DEFAULT_TIMEOUT_S, HttpxRequests, to_reply
from harness.testing.target import Reply, TargetError

# SageMaker waits 4 minutes for the first healthy /ping (S2).
DEFAULT_LOAD_TIMEOUT_S = 240.0
BASE_URL = "http://asgi.smlocal"

Lifespan = Callable[[], AbstractAsyncContextManager[Any]]
T = TypeVar("T")


def code_without_requirements(code_dir: Path, into: Path) -> Path:
    """A copy of `code_dir` without requirements.txt, for a runtime that must not pip-install
    into this environment (S15 is checked separately, e.g. by `smlocal validate`)."""
    copy = into / code_dir.name
    shutil.copytree(code_dir, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                  "requirements.txt"))
    return copy


class AsgiTarget(HttpxRequests):
    """Any ASGI app with /ping and /invocations; use as a context manager (or call close())."""

    _client: httpx.AsyncClient

    def __init__(
        self,
        app: Any,
        *,
        lifespan: Lifespan | None = None,
        runtime: ServingRuntime | None = None,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        description: str = "asgi",
        resources: ExitStack | None = None,
    ) -> None:
        """`resources` (temporary directories, ...) are released after the app has stopped."""
        self.app = app
        self.runtime = runtime
        self.description = description
        self._stack = ExitStack()
        if resources is not None:
            self._stack.enter_context(resources)
        try:
            self._portal: BlockingPortal = self._stack.enter_context(
                start_blocking_portal(backend="asyncio")
            )
            if lifespan is not None:
                self._stack.enter_context(self._portal.wrap_async_context_manager(lifespan()))
            self._client = self._portal.call(self._make_client, timeout_s)
            self._stack.callback(self._portal.call, self._client.aclose)
            if runtime is not None:
                self._portal.call(self._wait_settled, runtime, load_timeout_s)
        except BaseException:
            self._stack.close()
            raise

    @classmethod
    def serving(
        cls,
        model_dir: Path,
        code_dir: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        install_requirements: bool = True,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
    ) -> AsgiTarget:
        """The app `serve` runs, on `model_dir` with the handlers in `code_dir` (default
        model_dir/code); settings from `environ` (default: none, i.e. SageMaker's defaults).
        Returns once the model has loaded, or failed to (then /ping answers 500)."""
        settings = ServingSettings.from_environ(dict(environ or {}), model_dir=model_dir,
                                                code_dir=code_dir)
        stack = ExitStack()
        if not install_requirements and settings.requirements_file.is_file():
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smlocal-")))
            settings = ServingSettings.from_environ(
                dict(environ or {}), model_dir=model_dir,
                code_dir=code_without_requirements(settings.code_dir, scratch),
            )
        from container.serving.app import create_app

        runtime = ServingRuntime(settings)
        app = create_app(settings, runtime)
        return cls(app, lifespan=lambda: app.router.lifespan_context(app), runtime=runtime,
                   load_timeout_s=load_timeout_s, resources=stack,
                   description=f"asgi (model {model_dir}, code {code_dir or model_dir / 'code'})")

    def __repr__(self) -> str:
        return f"AsgiTarget({self.description!r})"

    @property
    def load_failure(self) -> str | None:
        """Why the model failed to load, when the app is the serving runtime and it did."""
        return None if self.runtime is None else self.runtime.failure

    async def _make_client(self, timeout_s: float) -> httpx.AsyncClient:
        # An exception escaping the app is a 500, as behind a real server.
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=timeout_s)

    @staticmethod
    async def _wait_settled(runtime: ServingRuntime, timeout_s: float) -> ModelState:
        try:
            return await asyncio.wait_for(runtime.wait_settled(), timeout_s)
        except TimeoutError:
            raise TargetError(f"the model did not load within {timeout_s:g} s") from None

    async def _send(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request)

    def _call(self, request: httpx.Request) -> Reply:
        try:
            return to_reply(self._portal.call(self._send, request))
        except httpx.HTTPError as exc:
            raise TargetError(f"{request.method} {request.url.path} failed in the app: "
                              f"{type(exc).__name__}: {exc}") from exc

    def call(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run `function()` on the app's event loop and return its result: for callers that
        drive the app with their own asynchronous client (`smlocal bench`)."""
        return self._portal.call(function)

    def close(self) -> None:
        self._stack.close()
