"""Fixtures for the contract suite's tests: servers on 127.0.0.1 in threads, and a stand-in of
the SageMaker runtime API (the cloud is the one thing these tests fake). The handlers they serve
come from tests/harness/conftest.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

MAX_BODY = 6 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any, *, lifespan: str = "on") -> Iterator[str]:
    """`app` under uvicorn on 127.0.0.1 (a real socket), in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def serving_over_http(model_dir: Path, code_dir: Path | None = None,
                      environ: dict[str, str] | None = None) -> Iterator[str]:
    """The serving app as `serve` runs it, on a real port; yields once /ping is 200."""
    from container.serving.app import create_app
    from container.serving.settings import ServingSettings

    settings = ServingSettings.from_environ(environ or {}, model_dir=model_dir, code_dir=code_dir)
    with serve_in_thread(create_app(settings)) as url:
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/ping").status_code != 200:
            assert time.monotonic() < deadline, "the model did not load"
            time.sleep(0.1)
        yield url


# --- a stand-in of the SageMaker runtime API and DescribeEndpoint --------------------------

ACCOUNT = "111111111111"
REGION = "us-east-1"
MODEL_ERROR_TYPE = "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"
FORWARDED = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes",
             "x-amzn-sagemaker-target-model", "x-amzn-sagemaker-target-variant",
             "x-amzn-sagemaker-inference-id")


def runtime_api(endpoints: dict[str, str]) -> Any:
    """What SageMaker puts in front of a container: InvokeEndpoint forwards to the container
    named by the endpoint (its base URL) and answers the container's 4xx/5xx as ModelError
    (424) with OriginalStatusCode/OriginalMessage (S25); bodies over 6 MiB get 413 (S4).
    DescribeEndpoint reports InService once the container's /ping is 200, and AccessDenied
    for names starting with `denied-` (a role that may only invoke)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, error_type: str, message: str, **fields: Any) -> Response:
        return JSONResponse({"message": message, **fields}, status_code=status,
                            headers={"x-amzn-ErrorType": error_type})

    async def invoke(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in endpoints:
            return error(400, "ValidationError",
                         f"Endpoint {name} of account {ACCOUNT} not found.")
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"message": f"HTTP content length exceeded {MAX_BODY} bytes."},
                                status_code=413)
        headers = {key: value for key, value in request.headers.items() if key in FORWARDED}
        async with httpx.AsyncClient(base_url=endpoints[name], timeout=75) as client:
            answer = await client.post("/invocations", content=body, headers=headers)
        if answer.status_code >= 400:
            kind = "client" if answer.status_code < 500 else "server"
            return error(
                424, MODEL_ERROR_TYPE,
                f'Received {kind} error ({answer.status_code}) from primary with message '
                f'"{answer.text}". See https://{REGION}.console.aws.amazon.com/cloudwatch/home'
                f"?region={REGION}#logEventViewer:group=/aws/sagemaker/Endpoints/{name} in "
                f"account {ACCOUNT} for more information.",
                ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
                OriginalStatusCode=answer.status_code, OriginalMessage=answer.text,
                LogStreamArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/"
                f"Endpoints/{name}")
        passed = {"Content-Type": answer.headers.get("content-type", "application/json"),
                  "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        attributes = answer.headers.get("x-amzn-sagemaker-custom-attributes")
        if attributes:
            passed["X-Amzn-SageMaker-Custom-Attributes"] = attributes
        return Response(answer.content, headers=passed)

    async def control_plane(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        if target != "SageMaker.DescribeEndpoint":
            return error(400, "UnknownOperationException", f"not in the stand-in: {target}")
        name = json.loads(await request.body())["EndpointName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}"
        if name.startswith("denied-"):
            return JSONResponse({"__type": "AccessDeniedException",
                                 "message": "not authorized to perform: sagemaker:Describe"}, 400)
        if name not in endpoints:
            return JSONResponse({"__type": "ValidationException",
                                 "message": f'Could not find endpoint "{arn}".'}, 400)
        async with httpx.AsyncClient(base_url=endpoints[name], timeout=5) as client:
            healthy = (await client.get("/ping")).status_code == 200
        now = time.time()
        return JSONResponse({
            "EndpointName": name, "EndpointArn": arn, "EndpointConfigName": name,
            "EndpointStatus": "InService" if healthy else "Creating",
            "CreationTime": now, "LastModifiedTime": now,
        }, media_type="application/x-amz-json-1.1")

    return Starlette(routes=[
        Route("/endpoints/{name}/invocations", invoke, methods=["POST"]),
        Route("/", control_plane, methods=["POST"]),
    ])


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Dummy credentials, and boto3 pointed at the stand-in for both services."""

    def point_at(url: str) -> None:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url, "AWS_ENDPOINT_URL_SAGEMAKER": url,
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)

    return point_at


@pytest.fixture(scope="session")
def tools(handler_sources: SimpleNamespace) -> SimpleNamespace:
    """This directory's helpers for its test modules (which cannot import a conftest), with
    tests/harness/conftest.py's handler sources."""
    return SimpleNamespace(
        **vars(handler_sources), serve_in_thread=serve_in_thread,
        serving_over_http=serving_over_http, runtime_api=runtime_api, free_port=free_port,
        max_body=MAX_BODY, region=REGION,
    )
