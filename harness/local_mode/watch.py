"""Fail fast on a model that cannot load, instead of waiting out the SDK's health check.

While `deploy()` runs, the SDK polls `/ping` every 5 s for about 115 s and then says only
"Giving up, endpoint didn't launch correctly" (L6). `/ping` answers 500 both while the model
loads and after a failed load (S2), but the smlocal image's `/invocations` tells them apart:
503 with "the model failed to load: <error>". So the SDK's call runs in a thread, and this
process asks the container in the meantime; a broken handler fails the deploy in seconds, with
its error. With another image the probe never matches, and the SDK's own wait applies.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from harness.local_mode.errors import LocalModeError

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


def load_failure(port: int) -> str | None:
    """The load error the container at `port` reports, if its model failed to load."""
    base = f"http://127.0.0.1:{port}"
    ping, _ = _status(urllib.request.Request(f"{base}/ping"))
    if ping != 500:
        return None  # not up yet, or healthy: nothing to ask
    probe = urllib.request.Request(f"{base}/invocations", data=b'""', method="POST",
                                   headers={"Content-Type": "application/json"})
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


def run_watching(deploy: Callable[[], object], port: int) -> None:
    """Run `deploy` (the SDK's blocking call) and return when it does; raise its exception, or
    LocalModeError as soon as the container reports a failed load."""
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
    while thread.is_alive():
        thread.join(PROBE_INTERVAL_S)
        if thread.is_alive() and (failure := load_failure(port)) is not None:
            raise LocalModeError(f"the model failed to load: {failure}")
    if raised:
        raise raised[0]
