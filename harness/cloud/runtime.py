"""InvokeEndpoint (`POST /endpoints/<name>/invocations`, rest-json, C3, C9): the caller's body
and ContentType, Accept, CustomAttributes and InferenceId go to one container of the endpoint;
its answer comes back with the variant that served it.

As on SageMaker: a body over 6 MB is refused (413) before it is read; a container that answers
an error becomes `ModelError` (HTTP 424) with OriginalStatusCode, OriginalMessage and the log
group's LogStreamArn; a container slower than 60 s is a ModelError too. On a multi-model
endpoint `TargetModel` (X-Amzn-SageMaker-Target-Model) picks the model, loaded on first use
(harness/cloud/multi_model.py).
"""

from __future__ import annotations

import json
import logging
import uuid

import httpx
from werkzeug.wrappers import Request, Response

from harness.cloud.endpoints import Endpoints, Instance, Variant
from harness.cloud.multi_model import TargetError
from harness.cloud.settings import ACCOUNT_ID

log = logging.getLogger("smlocal.cloud")

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
FORWARDED = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes",
             "X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Target-Model")
RETURNED = ("X-Amzn-SageMaker-Custom-Attributes",)
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"
ORIGINAL_MESSAGE_CHARS = 4096


def _error(code: str | None, status: int, message: str, **fields: object) -> Response:
    headers = {"x-amzn-ErrorType": code} if code else {}
    return Response(json.dumps({"Message": message, "message": message, **fields}), status,
                    content_type="application/json", headers=headers)


class Runtime:
    def __init__(self, endpoints: Endpoints, timeout_s: float) -> None:
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0))

    def invoke(self, endpoint_name: str, request: Request) -> Response:
        length = request.content_length or 0
        if length > MAX_PAYLOAD_BYTES:
            # No error type: botocore names the error after the status, as SageMaker's does.
            return _error(None, 413, f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes.")
        routed = self.endpoints.route(endpoint_name,
                                      request.headers.get("X-Amzn-SageMaker-Target-Variant"))
        if routed is None:
            return _error("ValidationError", 400,
                          f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.")
        variant, instance = routed
        body = request.get_data()
        headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
        log_arn = self.endpoints.log_group_arn(endpoint_name)
        target = request.headers.get(TARGET_MODEL)
        try:
            if variant.model_data_prefix is None:
                if target is not None:
                    return _error("ValidationError", 400,
                                  f"Endpoint {endpoint_name} is not a multi-model endpoint and "
                                  "does not support target model header.")
                answer = self.http.post(f"{instance.url}/invocations", content=body,
                                        headers=headers)
            else:
                answer = self._invoke_target(endpoint_name, variant, instance, target, body,
                                             headers)
        except TargetError as exc:
            return _error(exc.code, exc.status, exc.message, **exc.fields)
        except httpx.TimeoutException:
            return _error("ModelError", 424, "Your invocation timed out while waiting for a "
                          "response from container primary. Review the latency metrics for "
                          "each container in Amazon CloudWatch, resolve the issue, and try "
                          "again.", LogStreamArn=log_arn)
        except httpx.HTTPError as exc:
            return _error("ModelError", 424, f"Received server error (0) from primary: {exc}",
                          LogStreamArn=log_arn)
        if answer.status_code >= 400:
            original = answer.text[:ORIGINAL_MESSAGE_CHARS]
            kind = "client" if answer.status_code < 500 else "server"
            return _error(
                "ModelError", 424,
                f"Received {kind} error ({answer.status_code}) from primary with message "
                f"\"{original}\". See the log group {log_arn} for more information.",
                OriginalStatusCode=answer.status_code, OriginalMessage=original,
                LogStreamArn=log_arn)
        out_headers = {"x-Amzn-Invoked-Production-Variant": variant.name}
        for name in RETURNED:
            if name in answer.headers:
                out_headers[name] = answer.headers[name]
        return Response(answer.content, 200, headers=out_headers,
                        content_type=answer.headers.get("Content-Type",
                                                        "application/octet-stream"))

    def _invoke_target(self, endpoint_name: str, variant: Variant, instance: Instance,
                       target: str | None, body: bytes,
                       headers: dict[str, str]) -> httpx.Response:
        if not target:
            raise TargetError("ValidationError", 400,
                              f"Request {uuid.uuid4()} is missing a target model header.")
        name = self.endpoints.load_target(endpoint_name, variant, instance, target)
        # By name, not by the X-Amzn-SageMaker-Target-Model header on /invocations: TorchServe
        # (the reference image) routes only /models/{name}/invoke, the smlocal image both.
        headers = {key: value for key, value in headers.items() if key != TARGET_MODEL}
        url = f"{instance.url}/models/{name}/invoke"
        answer = self.http.post(url, content=body, headers=headers)
        if answer.status_code == 404 and "ModelNotFound" in answer.text:
            # The container no longer has it (unloaded, or restarted): load it again, once.
            log.info("endpoint %s: model %s was gone from %s; loading it again", endpoint_name,
                     target, instance.instance_id)
            self.endpoints.load_target(endpoint_name, variant, instance, target, again=True)
            answer = self.http.post(url, content=body, headers=headers)
        return answer

    def close(self) -> None:
        self.http.close()
