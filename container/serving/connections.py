"""How the server treats connections: the uvicorn options of the serving runtime, and a deadline
for a request's head.

uvicorn times out a kept-alive connection between requests, but any byte cancels that timer, and
nothing times out a request line and headers that arrive one byte a second (slowloris) or never
come at all after the connection opens: each such client holds a socket and a file descriptor for
as long as it likes. HeadDeadlineH11Protocol closes a connection whose next request head is not
complete within HEAD_TIMEOUT_S of the connection opening or of the previous response. The body
has its own deadline (container.serving.body).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# A request head is a few hundred bytes; on loopback or a VPC it arrives in one segment.
HEAD_TIMEOUT_S = 10.0
# h11's buffer for an incomplete request head (its default, stated so it is a decision): a head
# that arrives whole is held to the same size by container.serving.head_limits.
MAX_INCOMPLETE_HEAD_BYTES = 16 * 1024


class HeadDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not send a request head in time."""

    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head() and (self.cycle is None or self.cycle.response_complete):
            self.logger.info("closing a connection that sent no complete request head in %g s",
                             self.head_timeout_s)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._waiting_for_head():
            self._cancel_head_deadline()
        elif self._head_deadline is None:
            # The body of a request answered early (a 413) ended: the next head is due. A
            # deadline already running is not extended by more bytes.
            self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._waiting_for_head():
            self._arm_head_deadline()
        else:
            self._cancel_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)


def uvicorn_options(head_timeout_s: float = HEAD_TIMEOUT_S) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config wherever the serving app is run (`serve` in the
    image, `smlocal serve` on the host), so both treat hostile clients the same way."""
    protocol: type[HeadDeadlineH11Protocol] = HeadDeadlineH11Protocol
    if head_timeout_s != HEAD_TIMEOUT_S:

        class ShorterHeadDeadline(HeadDeadlineH11Protocol):
            pass

        ShorterHeadDeadline.head_timeout_s = head_timeout_s
        protocol = ShorterHeadDeadline
    return {
        "http": protocol,
        "h11_max_incomplete_event_size": MAX_INCOMPLETE_HEAD_BYTES,
    }
