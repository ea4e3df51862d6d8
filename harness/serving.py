"""`smlocal serve` and `smlocal invoke`: the container's serving app on the host, and a client.

`serve` runs exactly the app the image runs (container.serving) under uvicorn, without Docker;
with reload, saving a handler file swaps the user module in the running server. `invoke` sends
one sentence to /invocations and prints what came back the way a SageMaker caller would see it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from container.serving.runtime import ServingRuntime
from container.serving.settings import ServingSettings, SettingsError

log = logging.getLogger("smlocal.serve")

# S3: the server gives up after 60 s by default; wait a little longer than that.
INVOKE_TIMEOUT_S = 75.0
# SageMaker returns a container's 4xx/5xx to the caller as ModelError, HTTP 424 (S25).
MODEL_ERROR_STATUS = 424
RELOAD_DEBOUNCE_MS = 200


def _error(command: str, message: str) -> None:
    print(f"smlocal {command}: error: {message}", file=sys.stderr)


# --- serve ----------------------------------------------------------------------------------


async def watch_code_dir(
    code_dir: Path,
    reload: Callable[[], Awaitable[bool]],
    stop: asyncio.Event,
    debounce_ms: int = RELOAD_DEBOUNCE_MS,
) -> None:
    """Call `reload` after each burst of changes to Python files under `code_dir`."""
    from watchfiles import PythonFilter, awatch

    async for changes in awatch(
        code_dir, watch_filter=PythonFilter(), stop_event=stop, debounce=debounce_ms, step=50
    ):
        names = sorted({Path(path).name for _, path in changes})
        log.info("reload: %s changed", ", ".join(names))
        await reload()


def _keep_exit_code_after_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn re-raises the signal it drained for; without a handler SIGTERM would kill us.
    log.info("shut down after signal %d", signum)


async def _serve(settings: ServingSettings, reload: bool) -> None:
    import uvicorn

    from container.serving.app import create_app
    from container.serving.connections import uvicorn_options
    from container.serving.main import bind_socket

    sock = bind_socket(settings.host, settings.port)
    runtime = ServingRuntime(settings)
    # No access log, as in the container: a line per request costs about a millisecond.
    config = uvicorn.Config(create_app(settings, runtime), lifespan="on", log_level="info",
                            access_log=False, **uvicorn_options())
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def watch_when_started() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        await watch_code_dir(settings.code_dir, runtime.reload, stop)

    if reload:
        if settings.code_dir.is_dir():
            tasks.append(asyncio.create_task(watch_when_started()))
            log.info("reload: watching %s", settings.code_dir)
        else:
            log.warning("reload: %s does not exist; nothing to watch", settings.code_dir)
    try:
        await server.serve(sockets=[sock])
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sock.close()


def serve_on_host(
    model_dir: Path, code_dir: Path | None, host: str, port: int, reload: bool
) -> int:
    """Serve `model_dir` (and the handlers in `code_dir`, default model_dir/code) until
    interrupted; 0 after a clean shutdown, 2 for a bad argument or setting, 1 otherwise."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if not model_dir.is_dir():
        _error("serve", f"--model-dir {model_dir} is not a directory")
        return 2
    if code_dir is not None and not code_dir.is_dir():
        _error("serve", f"--code {code_dir} is not a directory")
        return 2
    try:
        settings = ServingSettings.from_environ(model_dir=model_dir, code_dir=code_dir)
    except SettingsError as exc:
        _error("serve", str(exc))
        return 2
    settings = dataclasses.replace(settings, host=host, port=port)
    signal.signal(signal.SIGTERM, _keep_exit_code_after_sigterm)
    try:
        asyncio.run(_serve(settings, reload))
    except OSError as exc:
        _error("serve", f"cannot listen on {host}:{port}: {exc}")
        return 1
    return 0


# --- invoke ---------------------------------------------------------------------------------


def _error_message(body: str) -> str:
    """The first line of what the container said: a JSON error's message, or the DLC's
    `message\\ntraceback` text."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        body = parsed["message"]
    lines = body.strip().splitlines()
    return lines[0] if lines else "(empty body)"


def model_error_line(status_code: int, body: str) -> str:
    """S25: how a SageMaker caller sees a container error: ModelError (HTTP 424) carrying
    OriginalStatusCode and OriginalMessage."""
    kind = "client" if status_code < 500 else "server"
    message = _error_message(body)
    return (
        f"ModelError (HTTP {MODEL_ERROR_STATUS}): Received {kind} error ({status_code}) from "
        f'the model with message "{message}". OriginalStatusCode={status_code}'
    )


def logit_rows(payload: Any) -> list[list[float]] | None:
    if isinstance(payload, list) and payload and all(
        isinstance(row, list) and row and all(isinstance(value, int | float) for value in row)
        for row in payload
    ):
        return [[float(value) for value in row] for row in payload]
    return None


def describe_rows(rows: list[list[float]]) -> list[str]:
    """One line per row: the logits and the predicted class (their argmax)."""
    return [
        f"logits: {row}  class: {max(range(len(row)), key=row.__getitem__)}" for row in rows
    ]


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def invoke(text: str, url: str, content_type: str, accept: str) -> int:
    """POST `text` to URL/invocations; print the logits and the predicted class of each row."""
    body = json.dumps(text) if _media_type(content_type) == "application/json" else text
    endpoint = url.rstrip("/") + "/invocations"
    try:
        response = httpx.post(
            endpoint,
            content=body.encode("utf-8"),
            headers={"Content-Type": content_type, "Accept": accept},
            timeout=INVOKE_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        _error("invoke", f"cannot reach {endpoint}: {exc} (is `smlocal serve` running?)")
        return 1
    if response.status_code != 200:
        _error("invoke", model_error_line(response.status_code, response.text))
        return 1
    try:
        rows = logit_rows(response.json())
    except ValueError:
        rows = None
    if rows is None:
        print(response.text)
        print(
            f"smlocal invoke: the response ({response.headers.get('content-type')}) is not a "
            "list of logit rows; printed as received",
            file=sys.stderr,
        )
        return 0
    for line in describe_rows(rows):
        print(line)
    return 0
