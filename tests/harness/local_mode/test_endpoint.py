"""harness.local_mode.endpoint without Docker: what deploy() refuses before anything starts.
(Serving itself: tests/docker/test_local_mode.py.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.local_mode.endpoint import deploy, refuse_busy_port
from harness.local_mode.errors import LocalModeError

HANDLERS = Path(__file__).resolve().parents[3] / "handlers"


def test_a_busy_port_is_refused_with_a_hint() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(LocalModeError, match=f"port {port} is in use .*choose --port") as e:
            refuse_busy_port(port)
    assert e.value.exit_code == 2


def test_a_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refuse_busy_port(port)


def test_missing_model_or_entry_point(tmp_path: Path) -> None:
    with pytest.raises(LocalModeError, match=r"model archive .* not found") as e:
        deploy(tmp_path / "model.tar.gz", code_dir=HANDLERS, root=tmp_path)
    assert e.value.exit_code == 2
    (tmp_path / "model.tar.gz").write_bytes(b"")
    with pytest.raises(LocalModeError, match=r"entry point .*serve\.py not found"):
        deploy(tmp_path / "model.tar.gz", code_dir=HANDLERS, entry_point="serve.py",
               root=tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "model.tar.gz"], "nothing was started"
