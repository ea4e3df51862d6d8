"""Watch the container while the SDK's `deploy()` runs: ready sooner, and fail fast.

While `deploy()` runs, the SDK polls `/ping` every 5 s (L6): a container that is ready just after
a poll waits up to 5 s more, and one that cannot load is polled for about 115 s before the SDK
says only "Giving up, endpoint didn't launch correctly". So the SDK's call runs in a thread and
this process asks the container in the meantime:

- `/ping` 200 is what the SDK itself waits for, so this process polls it every 0.1 s and may hand
  the endpoint to the caller at once; the SDK's thread sees the same 200 at its next poll and
  ends by itself.
- `/ping` answers 500 both while the model loads and after a failed load (S2), but the smlocal
  image's `/invocations` tells them apart: 503 with "the model failed to load: <error>". A broken
  handler fails the deploy in seconds, with its error. With another image this probe never
  matches, and the SDK's own wait applies.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from harness.local_mode.errors import LocalModeError

PING_INTERVAL_S = 0.1
PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0
LOAD_FAILED = "the model failed to load: "


def _status(request: urllib.request.Request) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""  # not listening yet


def ping_status(port: int) -> int:
    """The status of `/ping` on 127.0.0.1:`port`; 0 when nothing answers."""
    return _status(urllib.request.Request(f"http://127.0.0.1:{port}/ping"))[0]


def load_failure(port: int) -> str | None:
    """The load error the container at `port` reports, if its model failed to load."""
    if ping_status(port) != 500:
        return None  # not up yet, or healthy: nothing to ask
    probe = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=b'""',
                                   method="POST", headers={"Content-Type": "application/json"})
    status, body = _status(probe)
    if status != 503:
        return None
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        return None
    if isinstance(message, str) and message.startswith(LOAD_FAILED):
        return message.removeprefix(LOAD_FAILED)
    return None


def run_watching(deploy: Callable[[], object], port: int, *,
                 ready_on_ping: bool = False) -> threading.Thread | None:
    """Run `deploy` (the SDK's blocking call) and return when it does; raise its exception, or
    LocalModeError as soon as the container reports a failed load.

    `ready_on_ping`: return as soon as `/ping` on `port` answers 200, with the SDK's thread
    still running (it ends at its next poll): the caller joins it before deleting the
    endpoint. Returns None when the SDK's call has already ended."""
    raised: list[BaseException] = []

    def call() -> None:
        try:
            deploy()
        except BaseException as exc:  # handed to the caller's thread
            raised.append(exc)

    # A daemon: after a failed load the SDK keeps polling for its full timeout, which must not
    # keep this process alive.
    thread = threading.Thread(target=call, name="smlocal-sdk-deploy", daemon=True)
    thread.start()
    interval = PING_INTERVAL_S if ready_on_ping else PROBE_INTERVAL_S
    probe_at = time.monotonic() + PROBE_INTERVAL_S
    while thread.is_alive():
        thread.join(interval)
        if not thread.is_alive():
            break
        if ready_on_ping and ping_status(port) == 200:
            return thread
        if time.monotonic() >= probe_at:
            probe_at = time.monotonic() + PROBE_INTERVAL_S
            if (failure := load_failure(port)) is not None:
                raise LocalModeError(f"the model failed to load: {failure}")
    if raised:
        raise raised[0]
    return None
