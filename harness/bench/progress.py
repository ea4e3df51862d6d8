"""Progress of a load run: a tqdm bar on a terminal, a plain line every few seconds elsewhere
(CI logs, containers, pipes), where a bar would be a wall of carriage returns."""

from __future__ import annotations

import time
from typing import Protocol, TextIO

PLAIN_EVERY_S = 5.0


class Progress(Protocol):
    def advance(self, ok: bool) -> None: ...

    def close(self) -> None: ...


class TqdmProgress:
    def __init__(self, total: int | None, description: str, stream: TextIO) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=description, unit="req", file=stream,
                         dynamic_ncols=True, leave=False)
        self._errors = 0

    def advance(self, ok: bool) -> None:
        if not ok:
            self._errors += 1
            self._bar.set_postfix(errors=self._errors, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


class PlainProgress:
    def __init__(self, total: int | None, description: str, stream: TextIO,
                 every_s: float = PLAIN_EVERY_S) -> None:
        self.total = total
        self.description = description
        self.stream = stream
        self.every_s = every_s
        self.done = 0
        self.errors = 0
        self.started = time.monotonic()
        self._next = self.started + every_s

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.errors += 0 if ok else 1
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every_s
            of = f"/{self.total}" if self.total is not None else ""
            rate = self.done / max(now - self.started, 1e-9)
            print(f"{self.description}: {self.done}{of} requests, {rate:.1f} req/s, "
                  f"{self.errors} errors", file=self.stream, flush=True)

    def close(self) -> None:
        """The level's summary line says the rest."""


def open_progress(total: int | None, description: str, stream: TextIO) -> Progress:
    if stream.isatty():
        return TqdmProgress(total, description, stream)
    return PlainProgress(total, description, stream)
