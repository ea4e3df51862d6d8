"""Fixtures for the handler tests (which cannot import a conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

ServingClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def serving_app(model_dir: Path, code_dir: Path,
                      environ: Mapping[str, str] | None = None
                      ) -> AsyncIterator[httpx.AsyncClient]:
    """The serving app in this process on `model_dir` with the handlers of `code_dir` (as in
    model.tar.gz's code/), once its model has loaded; `environ` as the container's."""
    from container.serving.app import create_app
    from container.serving.runtime import ModelState, ServingRuntime
    from container.serving.settings import ServingSettings

    settings = ServingSettings.from_environ(dict(environ or {}), model_dir=model_dir,
                                            code_dir=code_dir)
    runtime = ServingRuntime(settings)
    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        assert await asyncio.wait_for(runtime.wait_settled(), 120) is ModelState.READY
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://endpoint") as client:
            yield client


@pytest.fixture
def serving_client() -> ServingClient:
    return serving_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
