"""Waiting for the other hosts of a distributed job (T12)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("smlocal.train")


class HostResolutionError(Exception):
    """A host of the job never resolved."""


def wait_for_hosts(
    hosts: Sequence[str],
    timeout_s: float,
    resolve: Callable[[str], object] = socket.gethostbyname,
    interval_s: float = 1.0,
) -> None:
    """Block until every host name resolves; container DNS can lag behind container start.

    A single-host job skips this: its one host is this machine (and `algo-1` does not resolve
    when the runtime runs on the host without Docker).
    """
    if len(hosts) < 2:
        return
    deadline = time.monotonic() + timeout_s
    for host in hosts:
        while True:
            try:
                resolve(host)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise HostResolutionError(
                        f"host {host} did not resolve within {timeout_s:.0f} s: {exc}"
                    ) from exc
                log.info("waiting for host %s to resolve", host)
                time.sleep(interval_s)
