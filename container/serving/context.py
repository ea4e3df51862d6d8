"""The `context` a handler may take as its last argument (S18), with the request headers (S13).

The method names follow TorchServe's Context (`system_properties`, `get_request_header(idx, key)`,
`set_response_header(idx, key, value)`), so a handler written against this class reads the same
on a TorchServe-based endpoint. One context per worker; the worker points it at the requests of
the batch it is running, and `request_index` at the one whose handler chain is running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
# S13: SageMaker caps the attribute at 1024 characters of visible ASCII.
MAX_CUSTOM_ATTRIBUTES_CHARS = 1024


def custom_attributes_problem(value: str) -> str | None:
    """Why `value` cannot be an X-Amzn-SageMaker-Custom-Attributes value, or None."""
    if len(value) > MAX_CUSTOM_ATTRIBUTES_CHARS:
        return (
            f"{CUSTOM_ATTRIBUTES} is {len(value)} characters long; SageMaker allows at most "
            f"{MAX_CUSTOM_ATTRIBUTES_CHARS}"
        )
    if not all(" " <= char <= "~" for char in value):
        return f"{CUSTOM_ATTRIBUTES} must be printable ASCII"
    return None


class RequestProperties:
    """One request of a batch: its headers in, and the headers a handler sets for its response."""

    def __init__(self, request_id: str, headers: Iterable[tuple[str, str]]) -> None:
        self.request_id = request_id
        # HTTP names are case-insensitive; the first occurrence of a repeated header wins.
        self._headers: dict[str, str] = {}
        for name, value in headers:
            self._headers.setdefault(name.lower(), value)
        self.response_headers: dict[str, str] = {}

    @property
    def headers(self) -> Mapping[str, str]:
        """Lower-cased header names to values."""
        return dict(self._headers)

    def header(self, name: str) -> str | None:
        return self._headers.get(name.lower())


class Context:
    def __init__(self, system_properties: Mapping[str, Any], model_name: str = "model") -> None:
        # model_dir, gpu_id (None on CPU), batch_size, server_name, server_version.
        self.system_properties: dict[str, Any] = dict(system_properties)
        self.model_name = model_name
        self.request_processor: list[RequestProperties] = []
        self.request_index = 0

    def _request(self, idx: int) -> RequestProperties:
        if not 0 <= idx < len(self.request_processor):
            raise IndexError(
                f"request {idx} is not in the current batch of {len(self.request_processor)}"
            )
        return self.request_processor[idx]

    # The current request: what a handler running for one request usually wants.
    @property
    def request_headers(self) -> Mapping[str, str]:
        return self._request(self.request_index).headers

    @property
    def custom_attributes(self) -> str | None:
        return self._request(self.request_index).header(CUSTOM_ATTRIBUTES)

    def set_custom_attributes(self, value: str) -> None:
        """Answer the current request with X-Amzn-SageMaker-Custom-Attributes: value."""
        self.set_response_header(self.request_index, CUSTOM_ATTRIBUTES, value)

    # TorchServe-style, by index in the batch.
    def get_request_id(self, idx: int = 0) -> str:
        return self._request(idx).request_id

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self._request(idx).header(key)

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        return dict(self._request(idx).headers)

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        # SageMaker's runtime passes only the custom attributes back to the caller; accepting
        # other headers here would let a handler rely on something the cloud drops.
        if key.lower() != CUSTOM_ATTRIBUTES.lower():
            raise ValueError(
                f"only {CUSTOM_ATTRIBUTES} reaches a SageMaker caller; cannot set {key!r}"
            )
        problem = custom_attributes_problem(value)
        if problem is not None:
            raise ValueError(problem)
        self._request(idx).response_headers[CUSTOM_ATTRIBUTES] = value
