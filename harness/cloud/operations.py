"""The control plane's operation table: `SageMaker.<Operation>` -> handler.

A feature registers its handlers with `OperationTable.register` (training jobs, endpoints; later
SDK 3.x's extra calls and multi-model endpoints). The router validates the request against the
operation's input shape first, so a handler receives well-formed parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from harness.cloud.errors import ApiError
from harness.cloud.protocol import operation_names

Params = Mapping[str, Any]
Handler = Callable[[Params], Mapping[str, Any]]


class OperationTable:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, handler: Handler) -> None:
        if name not in operation_names():
            raise ValueError(f"{name} is not a SageMaker operation in botocore's model")
        self._handlers[name] = handler

    def register_all(self, handlers: Mapping[str, Handler]) -> None:
        for name, handler in handlers.items():
            self.register(name, handler)

    def handler(self, name: str) -> Handler:
        handler = self._handlers.get(name)
        if handler is None:
            if name in operation_names():
                raise ApiError("UnknownOperationException",
                               f"smlocal cloud does not implement SageMaker.{name} yet")
            raise ApiError("UnknownOperationException", f"unknown operation SageMaker.{name}")
        return handler

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._handlers))
