"""The bounds of a load run: a mistyped argument must not become a denial of service on the
machine (load goes to loopback or the project's own containers, bounded)."""

from __future__ import annotations

MAX_CONCURRENCY = 256
MAX_REQUESTS = 100_000
MAX_DURATION_S = 600.0
