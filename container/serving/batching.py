"""S27: server-side batching. A free worker takes up to `size` queued invocations, waiting at most
`max_delay_s` after the first for the rest; `size` 1 is plain one-at-a-time serving."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from container.serving.invocation import Invocation, Outcome


@dataclass(frozen=True)
class PendingInvocation:
    invocation: Invocation
    future: asyncio.Future[Outcome]

    @property
    def abandoned(self) -> bool:
        """The caller stopped waiting (timeout, disconnect): do not run it."""
        return self.future.done()


async def next_batch(
    queue: asyncio.Queue[PendingInvocation], size: int, max_delay_s: float
) -> list[PendingInvocation]:
    """The next 1..size live invocations, in arrival order."""
    batch: list[PendingInvocation] = []
    while not batch:
        first = await queue.get()
        if not first.abandoned:
            batch.append(first)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_delay_s
    while len(batch) < size:
        if queue.empty():
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
