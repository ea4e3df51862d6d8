"""S27: server-side batching. A free worker takes up to `size` queued invocations, waiting at most
`max_delay_s` after the first for the rest; `size` 1 is plain one-at-a-time serving.

With no batch settings and batch-aware handlers there is no fixed delay; `LoadFollower` decides
how long a free worker waits, from the batch it has just run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from container.serving.invocation import Invocation, Outcome


@dataclass(frozen=True)
class PendingInvocation:
    invocation: Invocation
    future: asyncio.Future[Outcome]

    @property
    def abandoned(self) -> bool:
        """The caller stopped waiting (timeout, disconnect): do not run it."""
        return self.future.done()


@dataclass(frozen=True)
class Gather:
    """How a free worker gathers its next batch: up to `size` invocations, waiting at most
    `max_delay_s` after the first for more; a wait ends early once `enough` have queued."""

    size: int
    max_delay_s: float = 0.0
    enough: int | None = None  # None: `size`


@dataclass
class LoadFollower:
    """The automatic batching's gather rule: a lone client is never held back, and a busy
    server's batches stay full.

    Clients that each wait for their answer before sending again (a benchmark at concurrency
    16, a batch transform, a service's fixed pool of callers) all get their answers when a batch
    ends, and all send again a moment later. A worker that took only what had queued at that
    moment would run a batch of one or two, then one of the rest, and so on: half-empty
    batches, each paying a whole forward. So after a batch of n, the worker waits for up to n
    requests, but only up to `share` of the time that batch took to run (at most `max_wait_s`),
    and goes as soon as n have queued. After a batch of one there is no wait at all.
    """

    size: int
    max_wait_s: float
    share: float = 0.2
    _last: Gather = field(init=False)

    def __post_init__(self) -> None:
        self._last = Gather(self.size)

    def next_gather(self) -> Gather:
        return self._last

    def observe(self, batch_size: int, run_s: float) -> None:
        """The worker ran a batch of `batch_size` in `run_s` seconds."""
        wait_s = min(self.share * run_s, self.max_wait_s) if batch_size > 1 else 0.0
        self._last = Gather(self.size, wait_s, min(batch_size, self.size))


async def next_batch(
    queue: asyncio.Queue[PendingInvocation], size: int, max_delay_s: float,
    *, enough: int | None = None,
) -> list[PendingInvocation]:
    """The next 1..size live invocations, in arrival order; a wait for more ends as soon as
    `enough` (default `size`) are in hand."""
    batch: list[PendingInvocation] = []
    while not batch:
        first = await queue.get()
        if not first.abandoned:
            batch.append(first)
    loop = asyncio.get_running_loop()
    enough = size if enough is None else min(enough, size)
    deadline = loop.time() + max_delay_s
    while len(batch) < size:
        if queue.empty():
            if len(batch) >= enough:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    item = await queue.get()
            except TimeoutError:
                break
        else:
            item = queue.get_nowait()
        if not item.abandoned:
            batch.append(item)
    return batch


def settle(batch: list[PendingInvocation], outcomes: list[Outcome]) -> None:
    """Hand each waiting caller its own outcome."""
    for pending, outcome in zip(batch, outcomes, strict=True):
        if not pending.future.done():
            pending.future.set_result(outcome)
