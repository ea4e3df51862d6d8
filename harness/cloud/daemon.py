"""The server's life: `up` in the foreground (Ctrl-C or SIGTERM stops it), `up --detach` (a
background process in its own session, output in `server.log`; returns once the server
answers), `down` (SIGTERM to that process, then whatever is still labelled ours removed).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from harness.cloud import docker_engine as engine
from harness.cloud.errors import CloudError
from harness.cloud.paths import StatePaths
from harness.cloud.server import CloudServer, ServerInfo
from harness.cloud.settings import CloudSettings

READY_TIMEOUT_S = 120.0
# A running job gets its SIGTERM grace (T6) before the server gives up on it.
STOP_TIMEOUT_S = 300.0
POLL_S = 0.1


def process_alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our child, exited
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(paths: StatePaths) -> ServerInfo | None:
    """The server recorded in `server.json`, if its process is alive."""
    try:
        info = ServerInfo.from_json(paths.server_file.read_text())
    except (OSError, ValueError, TypeError):
        return None
    return info if process_alive(info.pid) else None


def run_foreground(settings: CloudSettings) -> int:
    paths = StatePaths(settings.state_dir)
    if (other := running_server(paths)) is not None:
        raise CloudError(f"smlocal cloud already runs at {other.url} (pid {other.pid}); "
                         "`smlocal cloud down` stops it", 2)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = CloudServer(settings)
    try:
        info = server.start()
    except OSError as exc:
        raise CloudError(f"cannot listen on port {settings.port}: {exc}", 2) from exc
    print(f"smlocal cloud ready at {info.url} (containers reach it at {info.container_url}); "
          f"`eval \"$(smlocal cloud env)\"` points a shell at it", flush=True)
    stopped = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stopped.wait()
    server.stop()
    return 0


def start_detached(settings: CloudSettings) -> ServerInfo:
    paths = StatePaths(settings.state_dir)
    if (other := running_server(paths)) is not None:
        raise CloudError(f"smlocal cloud already runs at {other.url} (pid {other.pid})", 2)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.server_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "harness.cli", "cloud", "up", "--port", str(settings.port),
               "--state-dir", str(settings.state_dir), "--serving-image", settings.serving_image]
    with paths.log_file.open("ab") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        info = running_server(paths)
        if info is not None and info.pid == child.pid:
            return info
        if child.poll() is not None:
            raise CloudError(f"smlocal cloud exited with code {child.returncode}: "
                             f"{_last_line(paths)} (log: {paths.log_file})")
        time.sleep(POLL_S)
    child.terminate()
    raise CloudError(f"smlocal cloud did not start within {READY_TIMEOUT_S:.0f} s "
                     f"(log: {paths.log_file})")


def _last_line(paths: StatePaths) -> str:
    try:
        lines = [line for line in paths.log_file.read_text(errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(no output)"


def stop(settings: CloudSettings) -> tuple[ServerInfo | None, int]:
    """Stop the server (if one runs) and remove every container and network still labelled
    ours; the server found, and how many leftovers were removed."""
    paths = StatePaths(settings.state_dir)
    info = running_server(paths)
    if info is not None:
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while process_alive(info.pid):
            if time.monotonic() > deadline:
                os.kill(info.pid, signal.SIGKILL)
                break
            time.sleep(POLL_S)
    paths.server_file.unlink(missing_ok=True)
    return info, engine.remove_ours(settings.instance_id)
