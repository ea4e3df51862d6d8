"""The load generator: `concurrency` users, each sending its next request as soon as the last
one is answered (a closed loop), until a request count or a duration is used up.

Requests are taken in order from a cycle of the workload, so a run is reproducible; each
completed request becomes a `Sample` with its latency, measured around the send alone.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.bench.limits import MAX_CONCURRENCY, MAX_DURATION_S, MAX_REQUESTS
from harness.bench.sending import Driver, NoAnswer, Send
from harness.bench.workload import BenchRequest


@dataclass(frozen=True)
class Budget:
    """How long one level runs: `requests` in all, or for `duration_s` (then also at most
    MAX_REQUESTS)."""

    requests: int | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if (self.requests is None) == (self.duration_s is None):
            raise ValueError("give a request count or a duration, not both")
        if self.requests is not None and not 1 <= self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be 1..{MAX_REQUESTS}, not {self.requests}")
        if self.duration_s is not None and not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S:g}] s, "
                             f"not {self.duration_s:g}")

    @property
    def cap(self) -> int:
        return self.requests if self.requests is not None else MAX_REQUESTS

    def describe(self) -> str:
        if self.requests is not None:
            return f"{self.requests} requests"
        return f"{self.duration_s:g} s"


@dataclass(frozen=True)
class Sample:
    """One request: its index in the run, when it was sent (s since the level started), how
    long its answer took (s), the status (None: no answer) and, without an answer, why."""

    index: int
    request: BenchRequest
    sent_s: float
    latency_s: float
    status: int | None
    error: str | None = None

    @property
    def outcome(self) -> str:
        """The status as text, or the error's name: the key of status counts."""
        return str(self.status) if self.status is not None else (self.error or "no answer")


@dataclass(frozen=True)
class LevelRun:
    concurrency: int
    wall_s: float
    samples: list[Sample]
    # CPU time of this whole process over the level: the generator's own cost against a
    # server elsewhere (the server's too, in-process).
    cpu_s: float = 0.0


async def drive(send: Send, requests: Sequence[BenchRequest], concurrency: int,
                budget: Budget, on_sample: Callable[[Sample], None] | None = None,
                first_index: int = 0) -> LevelRun:
    """Run one level; returns every sample in completion order."""
    if not requests:
        raise ValueError("no requests to send")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be 1..{MAX_CONCURRENCY}, not {concurrency}")
    counter = itertools.count()
    samples: list[Sample] = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = None if budget.duration_s is None else started + budget.duration_s

    async def user() -> None:
        while True:
            number = next(counter)
            if number >= budget.cap or (deadline is not None
                                        and time.perf_counter() >= deadline):
                return
            index = first_index + number
            request = requests[index % len(requests)]
            sent = time.perf_counter()
            status: int | None
            error: str | None = None
            try:
                status = await send(request)
            except NoAnswer as exc:
                status, error = None, str(exc) or "no answer"
            done = time.perf_counter()
            sample = Sample(index, request, sent - started, done - sent, status, error)
            samples.append(sample)
            if on_sample is not None:
                on_sample(sample)

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return LevelRun(concurrency, time.perf_counter() - started, samples,
                    time.process_time() - cpu_started)


def run_level(driver: Driver, requests: Sequence[BenchRequest], concurrency: int,
              budget: Budget, *, warmup: int = 0,
              on_sample: Callable[[Sample], None] | None = None,
              first_index: int = 0) -> LevelRun:
    """`warmup` unmeasured requests (opening every connection, waking every worker), then the
    measured level, on one client."""

    async def job(send: Send) -> LevelRun:
        if warmup:
            await drive(send, requests, min(concurrency, warmup), Budget(requests=warmup),
                        first_index=first_index)
        return await drive(send, requests, concurrency, budget, on_sample,
                           first_index=first_index)

    return driver.run(concurrency, job)
