"""The one thing the load generator needs of a transport: a `Driver` runs a job with a `Send`
function, and `Send` returns the status of one request or raises NoAnswer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from harness.bench.workload import BenchRequest

T = TypeVar("T")


class NoAnswer(Exception):
    """The request got no HTTP answer (refused, reset, timed out); the message says which."""


Send = Callable[[BenchRequest], Awaitable[int]]
Job = Callable[[Send], Awaitable[T]]


class Driver(Protocol):
    def run(self, concurrency: int, job: Job[T]) -> T:
        """Run `job(send)` to completion with up to `concurrency` requests in flight."""
        ...

    def close(self) -> None: ...
