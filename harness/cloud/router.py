"""The one front app behind the port (C3): SageMaker control plane and runtime are ours, all
else (S3, STS, IAM, CloudWatch Logs) is moto's server.

Both SageMaker APIs sign as service `sagemaker`, so the split is on the request itself: a
`X-Amz-Target: SageMaker.<Op>` header is the control plane, `POST /endpoints/<name>/invocations`
the runtime. IAM's SimulatePrincipalPolicy and GetRole get a word in first (C11). A write to S3
tells persistence which bucket changed.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from harness.cloud import backend
from harness.cloud.clients import INTERNAL_ACCESS_KEY
from harness.cloud.errors import ApiError
from harness.cloud.operations import OperationTable
from harness.cloud.protocol import (
    JSON_CONTENT_TYPE,
    TARGET_PREFIX,
    decode_request,
    encode,
    error_body,
    validate_input,
)

log = logging.getLogger("smlocal.cloud")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")
S3_WRITES = frozenset({"PUT", "POST", "DELETE"})


class Runtime(Protocol):
    def invoke(self, endpoint_name: str, request: Request) -> Response: ...


class BucketWatcher(Protocol):
    def changed(self, bucket: str) -> None: ...


def signing_service(environ: dict[str, Any]) -> str | None:
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group("service").lower() if match else None


def control_plane_response(operations: OperationTable, request: Request) -> Response:
    operation = request.headers.get("X-Amz-Target", "")[len(TARGET_PREFIX):]
    try:
        handler = operations.handler(operation)
        params = decode_request(request.get_data())
        validate_input(operation, params)
        body = encode(handler(params))
        return Response(body, 200, content_type=JSON_CONTENT_TYPE)
    except ApiError as error:
        return Response(error_body(error), error.status, content_type=JSON_CONTENT_TYPE,
                        headers={"x-amzn-ErrorType": error.code})
    except Exception:  # a bug of ours: the caller gets a 500 it can report, the log the trace
        log.exception("SageMaker.%s failed", operation)
        return Response(error_body(ApiError("InternalFailure", "internal error in smlocal "
                                            "cloud (see its log)", 500)), 500,
                        content_type=JSON_CONTENT_TYPE)


class FrontApp:
    def __init__(self, operations: OperationTable, runtime: Runtime, moto: WsgiApp,
                 buckets: BucketWatcher, iam_client: Callable[[], Any]) -> None:
        self.operations = operations
        self.runtime = runtime
        self.moto = moto
        self.buckets = buckets
        self.iam_client = iam_client

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        service = signing_service(environ)
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
            return control_plane_response(self.operations, Request(environ))(
                environ, start_response)
        runtime = RUNTIME_PATH.match(path)
        if runtime and method == "POST" and service in (None, "sagemaker"):
            return self.runtime.invoke(runtime.group("name"), Request(environ))(
                environ, start_response)
        internal = f"Credential={INTERNAL_ACCESS_KEY}/" in environ.get("HTTP_AUTHORIZATION", "")
        if service == "iam" and method == "POST" and not internal:
            answered = self._iam(environ)
            if answered is not None:
                return answered(environ, start_response)
        result = self.moto(environ, start_response)
        if service == "s3" and method in S3_WRITES:
            bucket = path.lstrip("/").split("/", 1)[0]
            if bucket:
                self.buckets.changed(bucket)
        return result

    def _iam(self, environ: dict[str, Any]) -> Response | None:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        action, params = backend.iam_action(body)
        if action == "SimulatePrincipalPolicy":
            return Response(backend.simulate_principal_policy(params), 200,
                            content_type="text/xml")
        if action == "GetRole" and params.get("RoleName"):
            backend.ensure_role(self.iam_client, params["RoleName"])
        return None
