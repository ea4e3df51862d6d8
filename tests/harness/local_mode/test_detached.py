"""harness.local_mode.detached, with real processes standing in for a foreground deploy: one
that records itself and waits for SIGTERM, and ones that fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.local_mode.detached import process_alive, start_detached, stop_endpoint
from harness.local_mode.errors import LocalModeError
from harness.local_mode.state import ENDPOINT_FILE, EndpointRecord, load_endpoint, save_endpoint

# What `smlocal local-mode deploy --record PATH` does, minus the SDK: record, wait, clean up.
FOREGROUND = textwrap.dedent("""
    import json, os, signal, sys, time
    marker, record = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: (open(marker, "w").write("deleted"), sys.exit(0)))
    time.sleep(0.3)
    print("endpoint ready", flush=True)
    with open(record + ".partial", "w") as f:
        json.dump({"pid": os.getpid(), "port": 8080, "name": "ep"}, f)
    os.replace(record + ".partial", record)
    while True:
        time.sleep(1)
""")


def holder(marker: Path, root: Path) -> list[str]:
    return [sys.executable, "-c", FOREGROUND, str(marker), str(root / ENDPOINT_FILE)]


def test_start_returns_once_recorded_and_stop_terminates(tmp_path: Path) -> None:
    marker = tmp_path / "deleted"
    root = tmp_path / "root"
    record = start_detached(holder(marker, root), root)
    try:
        assert record.name == "ep" and process_alive(record.pid)
        assert "endpoint ready" in (tmp_path / "root" / "endpoint.log").read_text()
        with pytest.raises(LocalModeError, match="already running") as raised:
            start_detached(holder(marker, root), root)
        assert raised.value.exit_code == 2
    finally:
        stopped = stop_endpoint(tmp_path / "root")
    assert stopped == record
    assert marker.read_text() == "deleted", "SIGTERM reached the holder, which cleaned up"
    assert not process_alive(record.pid)
    assert load_endpoint(tmp_path / "root" / ENDPOINT_FILE) is None
    assert stop_endpoint(tmp_path / "root") is None


def test_a_deploy_that_fails_reports_its_last_line(tmp_path: Path) -> None:
    failing = [sys.executable, "-c",
               "import sys; print('pulling'); print('port 8080 is in use'); sys.exit(2)"]
    with pytest.raises(LocalModeError, match=r"exit 2\): port 8080 is in use \(log: "):
        start_detached(failing, tmp_path)


def test_a_deploy_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    hanging = [sys.executable, "-c", "import time; time.sleep(60)"]
    started = time.monotonic()
    with pytest.raises(LocalModeError, match="no endpoint after 1 s"):
        start_detached(hanging, tmp_path, timeout_s=1.0)
    assert time.monotonic() - started < 30


def test_a_stale_record_is_replaced(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    save_endpoint(tmp_path / ENDPOINT_FILE,
                  EndpointRecord(pid=gone.pid, port=1, name="old"))
    record = start_detached(holder(tmp_path / "m", tmp_path), tmp_path)
    try:
        assert record.name == "ep"
    finally:
        stop_endpoint(tmp_path)


def test_the_record_lives_as_long_as_the_holder_holds(tmp_path: Path) -> None:
    import os

    from harness.local_mode.detached import recorded, refuse_if_running

    mine = EndpointRecord(pid=os.getpid(), port=8080, name="ep")
    with recorded(tmp_path, mine):
        assert load_endpoint(tmp_path / ENDPOINT_FILE) == mine
        with pytest.raises(LocalModeError, match="already running on port 8080"):
            refuse_if_running(tmp_path)
    assert load_endpoint(tmp_path / ENDPOINT_FILE) is None
    refuse_if_running(tmp_path)
