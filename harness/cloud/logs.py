"""Container output to CloudWatch Logs (C16): one stream per training host
(`/aws/sagemaker/TrainingJobs`, `<job>/algo-<n>-<epoch seconds>`) and per endpoint instance
(`/aws/sagemaker/Endpoints/<name>`, `<variant>/<instance id>`), so `fit(logs=True)` prints the
job's log while it runs. Lines are shipped in batches every half second by one thread; the last
lines of each stream are kept to explain a failure.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from harness.cloud.clients import Clients
from harness.cloud.docker_engine import iter_lines

log = logging.getLogger("smlocal.cloud")

TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
FLUSH_INTERVAL_S = 0.5
MAX_BATCH = 1000
TAIL_LINES = 50


def endpoint_group(endpoint_name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def training_stream(job_name: str, host: str, started: float) -> str:
    return f"{job_name}/{host}-{int(started)}"


def _timestamp_ms(stamp: str) -> int:
    """Docker's RFC 3339 timestamps have nanoseconds; Python parses microseconds."""
    try:
        head, _, fraction = stamp.rstrip("Z").partition(".")
        parsed = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
        return int(parsed.timestamp() * 1000) + int((fraction + "000")[:3])
    except ValueError:
        return int(time.time() * 1000)


class LogStream:
    """What one container said: shipped to CloudWatch Logs, its tail kept."""

    def __init__(self, group: str, name: str) -> None:
        self.group = group
        self.name = name
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.pending: list[dict[str, Any]] = []

    def last_lines(self, count: int = 20) -> str:
        return "\n".join(list(self.tail)[-count:])


class LogShipper:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self._streams: list[LogStream] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def open(self, group: str, name: str) -> LogStream:
        logs = self.clients.logs()
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=name)
        stream = LogStream(group, name)
        with self._lock:
            self._streams.append(stream)
        return stream

    def follow(self, container: Any, stream: LogStream) -> threading.Thread:
        """Ship the container's output (stdout and stderr, from the start) until it exits."""
        def pump() -> None:
            try:
                chunks: Iterator[bytes] = container.logs(stream=True, follow=True,
                                                         timestamps=True)
                for line in iter_lines(chunks):
                    stamp, _, text = line.partition(" ")
                    self.add(stream, text, _timestamp_ms(stamp))
            except Exception:
                log.exception("following the logs of %s failed", stream.name)

        thread = threading.Thread(target=pump, name=f"logs-{stream.name}", daemon=True)
        thread.start()
        return thread

    def add(self, stream: LogStream, text: str, timestamp_ms: int | None = None) -> None:
        if not text.strip():
            return  # CloudWatch Logs refuses empty events
        with self._lock:
            stream.tail.append(text)
            stream.pending.append({"timestamp": timestamp_ms or int(time.time() * 1000),
                                   "message": text})

    def flush(self) -> None:
        with self._lock:
            batches = [(stream, stream.pending) for stream in self._streams if stream.pending]
            for stream, _ in batches:
                stream.pending = []
        logs = self.clients.logs()
        for stream, events in batches:
            events.sort(key=lambda event: event["timestamp"])
            for start in range(0, len(events), MAX_BATCH):
                try:
                    logs.put_log_events(logGroupName=stream.group, logStreamName=stream.name,
                                        logEvents=events[start:start + MAX_BATCH])
                except Exception:
                    log.exception("shipping %d lines to %s failed", len(events), stream.name)

    def close(self, stream: LogStream) -> None:
        """The stream's container is gone: ship what is left and stop tracking it."""
        self.flush()
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
