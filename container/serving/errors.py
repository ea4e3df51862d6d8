"""How a failure becomes a response (S23, S24), and the exceptions handlers may raise.

User code may import `InferenceError` to pick the status of its error response, or raise any
exception with an integer `status_code` attribute (duck typing), so a handler that must also
run on the AWS images needs nothing of ours. Standard library only: user modules import this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar

TEXT_PLAIN = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"
DEFAULT_STATUS = 500


class InferenceError(Exception):
    """Raise from any handler to answer with `status_code` instead of 500 (S24).

    The arguments are in the order of the toolkit's BaseInferenceToolkitError, so code written
    for that class ports by changing the import.
    """

    def __init__(
        self, status_code: int, message: str | None = None, phrase: str | None = None
    ) -> None:
        self.status_code = status_code
        self.message = message or "Invalid Request"
        self.phrase = phrase or self.message
        super().__init__(self.message)


class RequestContractError(ValueError):
    """A request the default handlers cannot serve. The DLC answers these with 500 like any
    other exception (S23); strict mode answers `strict_status_code` instead."""

    strict_status_code: ClassVar[int] = 400


class UnsupportedContentTypeError(RequestContractError):
    strict_status_code = 415

    def __init__(self, content_type: str | None, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"Content type {content_type} is not supported by the default input_fn; supported: "
            f"{', '.join(supported)}. Define input_fn in the user module for other types."
        )


class UnsupportedAcceptError(RequestContractError):
    strict_status_code = 406

    def __init__(self, accept: str, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"Accept {accept} is not supported by the default output_fn; supported: "
            f"{', '.join(supported)}. Define output_fn in the user module for other types."
        )


class InputDecodeError(RequestContractError):
    """The body does not parse as its Content-Type says."""

    strict_status_code = 400


@dataclass(frozen=True)
class ErrorResponse:
    status_code: int
    body: bytes
    media_type: str
    # The DLC's reason phrase; ASGI servers cannot send a custom one, so it goes to the log.
    phrase: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def declared_status(exc: BaseException) -> int | None:
    """The status an exception asks for through a `status_code` attribute (S24), if valid."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return None


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    return str(exc) or type(exc).__name__


def _phrase(exc: BaseException, message: str) -> str:
    phrase = getattr(exc, "phrase", None)
    text = phrase if isinstance(phrase, str) and phrase else message
    return text.replace("\r", " ").replace("\n", " ")


def handler_error_response(exc: BaseException, trace: str, *, strict: bool) -> ErrorResponse:
    """S23/S24: what a handler's exception answers.

    By default as the DLC: the declared status or 500, the body `message\\ntraceback` as text.
    In strict mode: request errors of the default handlers map to 415/406/400 and every body is
    TorchServe's JSON error shape without the traceback (which stays in the log).
    """
    message = _message(exc)
    status = declared_status(exc)
    if not strict:
        return ErrorResponse(
            status_code=status or DEFAULT_STATUS,
            body=f"{message}\n{trace}".encode(),
            media_type=TEXT_PLAIN,
            phrase=_phrase(exc, message),
        )
    if status is None:
        if isinstance(exc, RequestContractError):
            status = exc.strict_status_code
        elif isinstance(exc, UnicodeDecodeError):
            status = 400
            message = f"the body is not valid UTF-8: {exc}"
        else:
            status = DEFAULT_STATUS
    return json_error(status, type(exc).__name__, message)


def json_error(
    status_code: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> ErrorResponse:
    """TorchServe's error body, `{"code": N, "type": "...", "message": "..."}` (S7)."""
    body = json.dumps({"code": status_code, "type": error_type, "message": message}, indent=2)
    return ErrorResponse(
        status_code=status_code,
        body=body.encode(),
        media_type=APPLICATION_JSON,
        phrase=message.replace("\r", " ").replace("\n", " "),
        headers=dict(headers or {}),
    )
