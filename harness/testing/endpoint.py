"""`endpoint:NAME`: a real SageMaker endpoint through boto3's `sagemaker-runtime` client.

A real endpoint answers a container's 4xx/5xx as `ModelError` (HTTP 424) carrying
`OriginalStatusCode` and `OriginalMessage` (S25); `reply_from_error` turns it back into the
container's status and body, so the suite's assertions hold unchanged. There is no /ping on a real
endpoint: `ping` reads the endpoint status from `DescribeEndpoint` (InService is healthy; a role
that may only invoke is taken as healthy).

The wire (boto3 calls) stays in EndpointTarget; the translation is plain functions of the
parsed responses, testable without a network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.testing.target import Reply, TargetError, TargetUnreachable

MODEL_ERROR_STATUS = 424
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
# Request headers SageMaker forwards (S13), as invoke_endpoint parameters.
HEADER_PARAMETERS = {
    CUSTOM_ATTRIBUTES: "CustomAttributes",
    "x-amzn-sagemaker-target-model": "TargetModel",
    "x-amzn-sagemaker-target-variant": "TargetVariant",
    "x-amzn-sagemaker-inference-id": "InferenceId",
}
ACCESS_DENIED = ("AccessDeniedException", "AccessDenied")
# S3: the container has 60 s; botocore's default read timeout is exactly that.
READ_TIMEOUT_S = 75


def invoke_parameters(
    endpoint_name: str,
    body: bytes,
    content_type: str | None,
    accept: str | None,
    headers: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The invoke_endpoint arguments for one request; headers SageMaker does not forward are an
    error, since a real endpoint would silently drop them."""
    parameters: dict[str, Any] = {"EndpointName": endpoint_name, "Body": body}
    if content_type is not None:
        parameters["ContentType"] = content_type
    if accept is not None:
        parameters["Accept"] = accept
    for name, value in (headers or {}).items():
        parameter = HEADER_PARAMETERS.get(name.lower())
        if parameter is None:
            raise TargetError(
                f"header {name!r} cannot be sent to a SageMaker endpoint; invoke_endpoint "
                f"forwards only {', '.join(sorted(HEADER_PARAMETERS))}"
            )
        parameters[parameter] = value
    return parameters


def reply_from_output(output: Mapping[str, Any]) -> Reply:
    """A successful invoke_endpoint response as the container's 200."""
    body = output["Body"]
    raw: bytes = body.read() if hasattr(body, "read") else bytes(body)
    headers: dict[str, str] = {}
    if output.get("ContentType") is not None:
        headers["content-type"] = str(output["ContentType"])
    if output.get("CustomAttributes"):
        headers[CUSTOM_ATTRIBUTES] = str(output["CustomAttributes"])
    return Reply(200, headers, raw)


def reply_from_error(response: Mapping[str, Any]) -> Reply:
    """A botocore ClientError's `response` as the container's answer (S25).

    ModelError (424): OriginalStatusCode and OriginalMessage are the container's status and body.
    Anything else came from the runtime API itself (e.g. 413 for a body over 6 MiB, S4): its
    HTTP status and message.
    """
    error = response.get("Error", {})
    metadata = response.get("ResponseMetadata", {})
    status = metadata.get("HTTPStatusCode")
    headers = {"x-smlocal-sagemaker-error": str(error.get("Code", ""))}
    if error.get("Code") == "ModelError" or status == MODEL_ERROR_STATUS:
        original_status = response.get("OriginalStatusCode")
        if not isinstance(original_status, int):
            raise TargetError(f"ModelError without OriginalStatusCode: {error.get('Message')}")
        message = response.get("OriginalMessage")
        body = message if isinstance(message, str) else str(error.get("Message", ""))
        if response.get("LogStreamArn"):
            headers["x-smlocal-log-stream-arn"] = str(response["LogStreamArn"])
        return Reply(original_status, headers, body.encode("utf-8"))
    if not isinstance(status, int):
        raise TargetError(f"{error.get('Code')}: {error.get('Message')}")
    return Reply(status, headers, str(error.get("Message", "")).encode("utf-8"))


def reply_from_description(description: Mapping[str, Any]) -> Reply:
    """DescribeEndpoint as /ping: 200 when InService, else 500 with the status (S2)."""
    status = description.get("EndpointStatus")
    if status == "InService":
        return Reply(200, {"content-type": "application/json"}, b'{"status": "Healthy"}')
    payload = {"status": "Unhealthy", "EndpointStatus": status,
               "FailureReason": description.get("FailureReason")}
    return Reply(500, {"content-type": "application/json"}, json.dumps(payload).encode())


def _client_error_type() -> type[Exception]:
    from botocore.exceptions import ClientError

    error_type: type[Exception] = ClientError
    return error_type


class EndpointTarget:
    """invoke_endpoint / describe_endpoint on `endpoint_name`; clients from boto3 unless given
    (boto3 honours AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME and AWS_ENDPOINT_URL_SAGEMAKER)."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        region: str | None = None,
        runtime_client: Any = None,
        sagemaker_client: Any = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        if runtime_client is None or sagemaker_client is None:
            import boto3
            from botocore.config import Config

            # One attempt: a retried invocation would run the handler twice.
            config = Config(read_timeout=READ_TIMEOUT_S, retries={"total_max_attempts": 1})
            session = boto3.session.Session(region_name=region)
            runtime_client = runtime_client or session.client("sagemaker-runtime", config=config)
            sagemaker_client = sagemaker_client or session.client("sagemaker", config=config)
        self._runtime = runtime_client
        self._sagemaker = sagemaker_client

    def __repr__(self) -> str:
        return f"EndpointTarget({self.endpoint_name!r})"

    def _unreachable(self, exc: Exception) -> TargetError:
        from botocore.exceptions import (
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
        )

        if isinstance(exc, NoCredentialsError | NoRegionError | EndpointConnectionError):
            return TargetUnreachable(f"endpoint {self.endpoint_name}: {exc}")
        return TargetError(f"endpoint {self.endpoint_name}: {type(exc).__name__}: {exc}")

    def ping(self) -> Reply:
        from botocore.exceptions import BotoCoreError

        try:
            description = self._sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        except _client_error_type() as exc:
            response: dict[str, Any] = getattr(exc, "response", {})
            message = str(response.get("Error", {}).get("Message", exc))
            if response.get("Error", {}).get("Code") in ACCESS_DENIED:
                # An invoke-only role: health cannot be read, so it is taken as InService.
                return Reply(200, {"content-type": "application/json"},
                             b'{"status": "Healthy", "assumed": "DescribeEndpoint was denied"}')
            if "Could not find endpoint" in message:
                raise TargetUnreachable(
                    f"endpoint {self.endpoint_name} does not exist: {message}"
                ) from exc
            raise TargetError(f"DescribeEndpoint {self.endpoint_name}: {message}") from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc) from exc
        return reply_from_description(description)

    def invoke(
        self,
        body: bytes,
        content_type: str | None = None,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        from botocore.exceptions import BotoCoreError

        parameters = invoke_parameters(self.endpoint_name, body, content_type, accept, headers)
        try:
            output = self._runtime.invoke_endpoint(**parameters)
        except _client_error_type() as exc:
            return reply_from_error(getattr(exc, "response", {}))
        except BotoCoreError as exc:
            raise self._unreachable(exc) from exc
        return reply_from_output(output)

    def close(self) -> None:
        for client in (self._runtime, self._sagemaker):
            close = getattr(client, "close", None)
            if callable(close):
                close()
