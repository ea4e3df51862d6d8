"""A serving process for the hostile-request and fuzz tests: `python -m container serve` on
127.0.0.1, as SageMaker starts the image (S1), with its memory readable from outside."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]
GOOD_DEFAULT_BODY = b"[[1.0, 2.0, 3.0]]"
GOOD_SENTENCES = b'["The cat sat on the mat."]'


@dataclass
class Server:
    handler_set: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    baseline_rss: int = 0
    cases_run: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def good_request(self) -> httpx.Response:
        body = GOOD_SENTENCES if self.handler_set == "inference" else GOOD_DEFAULT_BODY
        return httpx.post(
            self.url + "/invocations", content=body,
            headers={"Content-Type": "application/json"}, timeout=30,
        )

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def rss(self) -> int:
        return sum(process.memory_info().rss for process in self.processes())

    def peak_rss(self) -> int:
        """The high-water mark of every server process (VmHWM), summed."""
        total = 0
        for process in self.processes():
            status = Path(f"/proc/{process.pid}/status").read_text()
            line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
            total += int(line.split()[1]) * 1024
        return total

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    handler_set: str, base: Path, code_dir: Path, log: Path, body_timeout_s: float
) -> Server:
    """Start and warm up the server; `handler_set` "strict" sets SMLOCAL_STRICT."""
    port = _free_port()
    env = {
        **os.environ,
        "SAGEMAKER_BASE_DIR": str(base),
        "SMLOCAL_CODE_DIR": str(code_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SMLOCAL_BIND_HOST": "127.0.0.1",
        "SMLOCAL_BODY_TIMEOUT": str(body_timeout_s),
        "SMLOCAL_STRICT": "1" if handler_set == "strict" else "0",
        "HF_HUB_OFFLINE": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "container", "serve"], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )
    server = Server(handler_set, port, process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited: {server.log_tail()}")
        try:
            if httpx.get(server.url + "/ping", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"the server did not become healthy: {server.log_tail()}")
    # Warm up (first request, lazy imports) before the memory baseline.
    for _ in range(3):
        assert server.good_request().status_code == 200, server.log_tail()
    server.baseline_rss = server.rss()
    return server
