"""The HTTP surface: /ping (S2), /invocations (S3, S4, S8-S13), /execution-parameters (S6),
/models on a multi-model endpoint, and TorchServe-style JSON errors for everything else (S7).
OpenAPI at /docs, with its assets served locally."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from container.serving.body import BodyLimits, read_body
from container.serving.context import CUSTOM_ATTRIBUTES, custom_attributes_problem
from container.serving.docs import add_docs
from container.serving.errors import ErrorResponse, json_error
from container.serving.head_limits import HeadLimits, head_problem
from container.serving.invocation import Invocation, Outcome
from container.serving.multi_model import MultiModelRuntime
from container.serving.runtime import ServingRuntime
from container.serving.settings import ServingSettings

log = logging.getLogger("smlocal.serve")

NOT_FOUND_MESSAGE = "Requested resource is not found, please refer to API document."
METHOD_NOT_ALLOWED_MESSAGE = "Requested method is not allowed, please refer to API document."

_INVOCATIONS_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The request body, up to 6 MiB, handed to input_fn (or transform_fn).",
        "content": {
            media_type: {"schema": {}}
            for media_type in ("application/json", "text/csv", "application/x-npy",
                               "application/x-npz", "application/octet-stream")
        },
    },
}


def _to_response(outcome: Outcome) -> Response:
    if isinstance(outcome, ErrorResponse):
        headers = {"content-type": outcome.media_type, **outcome.headers}
        return Response(outcome.body, status_code=outcome.status_code, headers=headers)
    # The Content-Type goes in verbatim (S12): media_type= would append a charset to text/*.
    headers = {"content-type": outcome.content_type, **outcome.headers}
    return Response(outcome.body, status_code=200, headers=headers)


InvocationsEndpoint = Callable[[Request], Awaitable[Response]]


class ServingApp(FastAPI):
    """FastAPI for every route but one: `POST /invocations`, every request SageMaker sends,
    goes straight to its endpoint.

    FastAPI's route stays, for the OpenAPI document (/docs, the schemathesis fuzzing) and for
    the 405 on other methods. On the hot path FastAPI's middleware stack (error, exception,
    exit-stack and body-limit layers, each wrapping `send`) and its per-request dependency
    solving were half of the server's own CPU time per invocation; with one worker, that time
    is the gap between two batches. The hot path keeps what those layers do for it: the head
    limits (HeadLimits) and a JSON 500 for an unexpected error.
    """

    invocations_endpoint: InvocationsEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.invocations_endpoint
        if (endpoint is None or scope["type"] != "http" or scope["path"] != "/invocations"
                or scope["method"] != "POST"):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        problem = head_problem(scope)
        if problem is not None:
            await _to_response(problem)(scope, receive, send)
            return
        try:
            response = await endpoint(Request(scope, receive, send))
        except Exception:
            log.exception("POST /invocations failed")
            response = _to_response(json_error(500, "InternalServerException",
                                               "the server failed to handle the request"))
        await response(scope, receive, send)


def create_app(
    settings: ServingSettings,
    runtime: ServingRuntime | MultiModelRuntime | None = None,
    *,
    body_limits: BodyLimits | None = None,
) -> ServingApp:
    serving = runtime or (
        MultiModelRuntime(settings) if settings.multi_model else ServingRuntime(settings)
    )
    limits = body_limits or BodyLimits(settings.max_request_bytes, settings.body_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await serving.start()
        try:
            yield
        finally:
            await serving.stop()

    app = ServingApp(
        title="smlocal serving",
        summary="The SageMaker PyTorch serving contract, locally.",
        lifespan=lifespan,
        # Served by add_docs from local files, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = serving
    app.add_middleware(HeadLimits)
    add_docs(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            error = json_error(404, "ResourceNotFoundException", NOT_FOUND_MESSAGE)
        elif exc.status_code == 405:
            error = json_error(405, "MethodNotAllowedException", METHOD_NOT_ALLOWED_MESSAGE,
                               headers=dict(exc.headers or {}))
        else:
            error = json_error(exc.status_code, "HttpException", str(exc.detail))
        return _to_response(error)

    @app.get(
        "/ping",
        summary="Health check (S2)",
        responses={500: {"description": "Unhealthy: loading, or the load failed (see the log)"}},
    )
    async def ping() -> JSONResponse:
        # Reads a flag only: must answer within SageMaker's 2 s even while requests run.
        if serving.healthy:
            return JSONResponse({"status": "Healthy"})
        return JSONResponse({"status": "Unhealthy"}, status_code=500)

    async def read_invocation(request: Request) -> Invocation | Response:
        body = await read_body(request, limits)
        if isinstance(body, ErrorResponse):
            return _to_response(body)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.scope["headers"]
        ]
        invocation = Invocation.from_headers(
            serving.next_request_id(), body, headers, settings.default_accept
        )
        if settings.strict:
            attributes = request.headers.get(CUSTOM_ATTRIBUTES)
            problem = None if attributes is None else custom_attributes_problem(attributes)
            if problem is not None:
                return _to_response(json_error(400, "BadRequestException", problem))
        return invocation

    @app.post(
        "/invocations",
        summary="Run the handlers on one request (S8-S13)",
        openapi_extra=_INVOCATIONS_OPENAPI,
        response_class=Response,
    )
    async def invocations(request: Request) -> Response:
        invocation = await read_invocation(request)
        if isinstance(invocation, Response):
            return invocation
        return _to_response(await serving.invoke(invocation))

    app.invocations_endpoint = invocations

    if isinstance(serving, MultiModelRuntime):
        add_model_routes(app, serving, read_invocation)

    @app.get("/execution-parameters", summary="Batch transform parameters (S6)")
    async def execution_parameters() -> dict[str, Any]:
        return {
            "MaxConcurrentTransforms": settings.max_concurrent_transforms,
            "BatchStrategy": settings.batch_strategy,
            "MaxPayloadInMB": settings.max_payload_mb,
        }

    return app


def add_model_routes(
    app: FastAPI,
    models: MultiModelRuntime,
    read_invocation: Callable[[Request], Awaitable[Invocation | Response]],
) -> None:
    """The multi-model container API: load, list, describe, unload, invoke by name."""

    def answer(outcome: Outcome | dict[str, Any]) -> Response:
        if isinstance(outcome, dict):
            return JSONResponse(outcome)
        return _to_response(outcome)

    @app.get("/models", summary="The loaded models (multi-model endpoints)")
    async def list_models() -> Response:
        return answer(models.list_models())

    @app.post("/models", summary="Load a model from a directory (multi-model endpoints)")
    async def load_model(request: Request) -> Response:
        try:
            spec = await request.json()
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            return answer(json_error(400, "BadRequestException",
                                     'send {"model_name": "...", "url": "..."} as JSON'))
        return answer(await models.load(str(spec.get("model_name") or ""),
                                        str(spec.get("url") or "")))

    @app.get("/models/{name}", summary="Describe a loaded model (multi-model endpoints)")
    async def describe_model(name: str) -> Response:
        return answer(models.describe(name))

    @app.delete("/models/{name}", summary="Unload a model (multi-model endpoints)")
    async def unload_model(name: str) -> Response:
        return answer(await models.unload(name))

    @app.post("/models/{name}/invoke", summary="Invoke one model (multi-model endpoints)",
              openapi_extra=_INVOCATIONS_OPENAPI, response_class=Response)
    async def invoke_model(name: str, request: Request) -> Response:
        invocation = await read_invocation(request)
        if isinstance(invocation, Response):
            return invocation
        return answer(await models.invoke(invocation, name))
