"""A local-mode endpoint that outlives `smlocal local-mode deploy --detach`.

The SDK keeps a local endpoint alive through `docker-compose up`, run from a non-daemon thread of
the process that called `deploy()` (L5): when that process ends, the endpoint ends. So a
detached deploy starts the foreground deploy in a new session, with its output in a log file,
and returns once that process has recorded the ready endpoint. `down` sends it SIGTERM, on
which it deletes the endpoint through the SDK, as a foreground deploy does on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.local_mode.errors import LocalModeError
from harness.local_mode.signals import interruptible
from harness.local_mode.state import ENDPOINT_FILE, EndpointRecord, load_endpoint, save_endpoint

READY_TIMEOUT_S = 240.0  # the SDK itself gives up after about 115 s (L6)
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2
LOG_FILE = "endpoint.log"


def process_alive(pid: int) -> bool:
    try:
        # Our own child that has exited is a zombie until reaped: reap it, then it is gone.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if the process is still there after `timeout_s`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while process_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(POLL_S)


def refuse_if_running(root: Path) -> None:
    """One endpoint per root: refuse while the recorded holder lives; forget a dead one's."""
    record_path = root / ENDPOINT_FILE
    running = load_endpoint(record_path)
    if running is not None and process_alive(running.pid):
        raise LocalModeError(
            f"endpoint {running.name} is already running on port {running.port} "
            f"(pid {running.pid}); run `smlocal local-mode down` first", 2
        )
    record_path.unlink(missing_ok=True)


@contextlib.contextmanager
def recorded(root: Path, record: EndpointRecord) -> Iterator[None]:
    """Record the endpoint this process holds, for `predict` and `down`, while it holds it."""
    record_path = root / ENDPOINT_FILE
    save_endpoint(record_path, record)
    try:
        yield
    finally:
        current = load_endpoint(record_path)
        if current is not None and current.pid == record.pid:
            record_path.unlink(missing_ok=True)


def start_detached(deploy_command: Sequence[str], root: Path,
                   timeout_s: float = READY_TIMEOUT_S) -> EndpointRecord:
    """Run `deploy_command` (a foreground deploy that records itself under `root`) in the
    background; return its record once the endpoint answers."""
    refuse_if_running(root)
    root.mkdir(parents=True, exist_ok=True)
    log = root / LOG_FILE
    with log.open("wb") as output:
        child = subprocess.Popen(
            deploy_command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in this terminal must not reach it
        )
    deadline = time.monotonic() + timeout_s
    try:
        with interruptible():
            while (record := load_endpoint(root / ENDPOINT_FILE)) is None or (
                    record.pid != child.pid):
                code = child.poll()
                if code is not None:
                    raise LocalModeError(
                        f"deploy failed (exit {code}): {_last_line(log)} (log: {log})")
                if time.monotonic() > deadline:
                    raise LocalModeError(f"no endpoint after {timeout_s:.0f} s (log: {log})")
                time.sleep(POLL_S)
    except BaseException:
        # Given up, or Ctrl-C/SIGTERM while waiting: the background deploy must not outlive us
        # unseen. SIGTERM makes it stop and remove its endpoint (it may be half started).
        _terminate(child.pid, STOP_TIMEOUT_S)
        raise
    return record


def stop_endpoint(root: Path, timeout_s: float = STOP_TIMEOUT_S) -> EndpointRecord | None:
    """Stop the endpoint recorded under `root` (detached or in another terminal), if any:
    SIGTERM makes its holder delete it through the SDK. Return its record."""
    record_path = root / ENDPOINT_FILE
    record = load_endpoint(record_path)
    if record is None:
        return None
    if process_alive(record.pid):
        _terminate(record.pid, timeout_s)
    record_path.unlink(missing_ok=True)
    return record


def wait_for_termination() -> int:
    """Block until SIGTERM (`down`, a detached deploy) or SIGINT (Ctrl-C, a foreground one);
    return the signal's number."""
    received: list[int] = []

    def note(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not received:
            signal.pause()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received[0]
