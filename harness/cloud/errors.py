"""API errors as a client sees them, and the error of the CLI."""

from __future__ import annotations

from harness.errors import CommandError


class CloudError(CommandError):
    """`smlocal cloud` could not do what was asked (CLI: one line, exit code)."""


class ApiError(Exception):
    """An error answer of the SageMaker API: its code (the botocore error code), HTTP status and
    message; `fields` are extra members of a modeled error (ModelError's OriginalStatusCode)."""

    def __init__(self, code: str, message: str, status: int = 400,
                 fields: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(kind: str, name: str) -> ApiError:
    """What SageMaker answers for an unknown name: a ValidationException, not a 404 (the SDKs
    match on the text "Could not find")."""
    return ApiError("ValidationException", f'Could not find {kind} "{name}".')


def in_use(message: str) -> ApiError:
    return ApiError("ResourceInUse", message)
