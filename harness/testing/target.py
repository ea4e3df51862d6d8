"""What the contract suite talks to: a `Target` answers /ping and /invocations with a `Reply`.

Three transports implement it (asgi.py, http.py, endpoint.py); the suite sees only this protocol,
so the same checks hold for the app in-process, a container, and a real SageMaker endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class TargetError(Exception):
    """The target could not be asked (the request never got an HTTP answer)."""


class TargetUnreachable(TargetError):
    """Nothing answers at the target's address, or the endpoint does not exist."""


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@dataclass(frozen=True)
class Reply:
    """An HTTP answer as the container gave it: status, headers (names lower-cased), body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _lower_keys(self.headers))

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


@runtime_checkable
class Target(Protocol):
    """A SageMaker serving container, however it is reached.

    `invoke` returns the container's status and body even for errors (a real endpoint's
    ModelError is translated back, S25); it raises TargetError only when no answer came.
    """

    def ping(self) -> Reply: ...

    def invoke(
        self,
        body: bytes,
        content_type: str | None = None,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply: ...
