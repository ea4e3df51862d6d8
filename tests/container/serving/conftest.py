"""Fixtures for the serving tests: a real TorchScript model, handler modules written into
temporary model directories, and the app run in-process (lifespan included) behind httpx."""

from __future__ import annotations

import asyncio
import shutil
import socket
import textwrap
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from container.serving.app import create_app
from container.serving.runtime import ServingRuntime
from container.serving.settings import ServingSettings

# The tiny model's weights: y = x @ W.T + b, so expected outputs are easy to write down.
WEIGHT = [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
BIAS = [0.5, -0.5]


@pytest.fixture
def anyio_backend() -> str:
    # The runtime is asyncio code (asyncio.Queue, run_in_executor).
    return "asyncio"


@pytest.fixture(scope="session")
def torchscript_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real TorchScript model (Linear 3 -> 2 with known weights) saved with torch.jit.save."""
    import torch

    linear = torch.nn.Linear(3, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(WEIGHT))
        linear.bias.copy_(torch.tensor(BIAS))
    path = tmp_path_factory.mktemp("torchscript") / "model.pt"
    with warnings.catch_warnings():
        # torch.jit is deprecated in 2.13 but it is what the DLC's default model_fn loads (E9).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(linear), str(path))
    return path


@pytest.fixture
def model_dir(tmp_path: Path, torchscript_model_file: Path) -> Path:
    """/opt/ml/model for one test: model.pt, and code/ for the handlers the test writes."""
    directory = tmp_path / "model"
    (directory / "code").mkdir(parents=True)
    shutil.copy(torchscript_model_file, directory / "model.pt")
    return directory


HandlerWriter = Callable[..., Path]
SettingsFactory = Callable[..., ServingSettings]


@pytest.fixture
def write_handler(model_dir: Path) -> HandlerWriter:
    """Write a handler module (dedented source) into model_dir/code."""

    def write(source: str, name: str = "inference.py") -> Path:
        path = model_dir / "code" / name
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write


@pytest.fixture
def settings_for(model_dir: Path) -> SettingsFactory:
    """Settings as `serve` would read them from `env` (nothing else from os.environ)."""

    def make(env: Mapping[str, str] | None = None, **overrides: Path) -> ServingSettings:
        return ServingSettings.from_environ(
            dict(env or {}), model_dir=overrides.get("model_dir", model_dir),
            code_dir=overrides.get("code_dir"),
        )

    return make


@dataclass
class Served:
    client: httpx.AsyncClient
    # A MultiModelRuntime on a multi-model endpoint.
    runtime: ServingRuntime

    async def ping_status(self) -> int:
        return (await self.client.get("/ping")).status_code


@asynccontextmanager
async def serving(settings: ServingSettings, *, wait: bool = True) -> AsyncIterator[Served]:
    """The app with its lifespan running; by default once the model has loaded (or failed)."""
    app = create_app(settings)
    runtime = app.state.runtime
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://smlocal") as client:
            if wait:
                await asyncio.wait_for(runtime.wait_settled(), timeout=60)
            yield Served(client, runtime)


@pytest.fixture
def serve() -> Callable[..., AbstractAsyncContextManager[Served]]:
    return serving


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
