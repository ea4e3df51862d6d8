"""The SageMaker control plane's wire protocol (JSON 1.1, `X-Amz-Target: SageMaker.<Op>`, C3),
checked against botocore's own service model: a request missing a required member or carrying a
wrong type gets the ValidationException a real endpoint gives, before any handler runs.

Responses leave absent members out (C14): SDK 3.x parses strictly, and an empty optional
structure (`VpcConfig: {}`) fails its validation where an absent one passes.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Mapping
from typing import Any

from harness.cloud.errors import ApiError, validation_error

TARGET_PREFIX = "SageMaker."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


@functools.cache
def service_model(name: str = "sagemaker") -> Any:
    """botocore's model of a service (`sagemaker`, `sagemaker-runtime`)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


def validate_input(operation: str, params: Mapping[str, Any]) -> None:
    """Raise a ValidationException listing every problem botocore's validator finds (required
    members, types, ranges), as SageMaker does for a malformed request."""
    from botocore.validate import ParamValidator

    shape = service_model().operation_model(operation).input_shape
    if shape is None:
        return
    report = ParamValidator().validate(dict(params), shape)
    if report.has_errors():
        raise validation_error(report.generate_report())


def validate_output(operation: str, body: Mapping[str, Any]) -> list[str]:
    """The problems of a response against the operation's output shape (for tests, C14)."""
    from botocore.validate import ParamValidator

    shape = service_model().operation_model(operation).output_shape
    if shape is None:
        return []
    report = ParamValidator().validate(dict(body), shape)
    return report.generate_report().splitlines()[1:] if report.has_errors() else []


def compact(value: Any) -> Any:
    """Drop None members and empty optional structures, recursively (C14)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = compact(item)
            if item is None or (isinstance(item, Mapping) and not item):
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()  # JSON 1.1 timestamps: epoch seconds
    raise TypeError(f"not JSON: {type(value).__name__}")


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(compact(body), default=_default).encode()


def decode_request(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError("SerializationException", f"request body is not JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "request body must be a JSON object")
    return params


def error_body(error: ApiError) -> bytes:
    """JSON 1.1 errors: `__type` names the code botocore raises."""
    return json.dumps({"__type": error.code, "message": error.message, **error.fields}).encode()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
