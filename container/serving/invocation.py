"""One POST /invocations as the handlers see it (S8-S10, S12) and what it answers."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from container.serving.codecs import UTF8_TYPES
from container.serving.errors import ErrorResponse, json_error

# S8: the toolkit's pattern, matched at the start of the header name.
CONTENT_TYPE_HEADER = re.compile(r"^[Cc]ontent-?[Tt]ype")
ANY_ACCEPT = "*/*"


@dataclass(frozen=True)
class Invocation:
    request_id: str
    body: bytes
    # S8: None when the request has no Content-Type.
    content_type: str | None
    # S9: already resolved against the default.
    accept: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def from_headers(
        cls,
        request_id: str,
        body: bytes,
        headers: Iterable[tuple[str, str]],
        default_accept: str,
    ) -> Invocation:
        header_list = tuple(headers)
        content_type = next(
            (value for name, value in header_list if CONTENT_TYPE_HEADER.match(name)), None
        )
        accept = next((value for name, value in header_list if name.lower() == "accept"), None)
        if not accept or accept == ANY_ACCEPT:
            accept = default_accept
        return cls(request_id, body, content_type, accept, header_list)

    def input_data(self) -> str | bytes:
        """S10: UTF-8 text for exactly application/json and text/csv, bytes otherwise."""
        if self.content_type in UTF8_TYPES:
            return self.body.decode("utf-8")
        return self.body


@dataclass(frozen=True)
class InvocationResult:
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


Outcome = InvocationResult | ErrorResponse


def _serialize(value: Any) -> bytes | None:
    """The response bytes as TorchServe makes them from a handler's return value."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        import io

        buffer = io.BytesIO()
        torch.save(value, buffer)
        return buffer.getvalue()
    try:
        return json.dumps(value, indent=2).encode("utf-8")
    except (TypeError, ValueError):
        return None


def make_outcome(
    result: Any, accept: str, headers: dict[str, str], max_response_bytes: int
) -> Outcome:
    """S12: a (body, content_type) tuple sets the Content-Type; otherwise it is the Accept."""
    content_type = accept
    if isinstance(result, tuple):
        if len(result) != 2:
            return json_error(
                500,
                "InternalServerException",
                f"a handler returned a tuple of {len(result)} items; a tuple result must be "
                "(body, content_type)",
            )
        result, content_type = result[0], str(result[1])
    body = _serialize(result)
    if body is None:
        # TorchServe's answer when it cannot serialize what the handler returned.
        return json_error(
            503,
            "ServiceUnavailableException",
            f"Unsupported model output data type. The handler returned "
            f"{type(result).__name__}; return str, bytes or JSON-serializable data.",
        )
    if len(body) > max_response_bytes:
        return json_error(
            500,
            "InternalServerException",
            f"the response body is {len(body)} bytes; SageMaker allows at most "
            f"{max_response_bytes} (6 MiB) per response",
        )
    return InvocationResult(body, content_type, headers)
