"""Servers the benchmarks start themselves, on a loopback port: a container of an image serving
a model (`docker run IMAGE serve`, the smlocal image or the AWS reference image alike), the
host server `smlocal serve`, or the AWS stack (toolkit + TorchServe) from a venv on this host.
Either way the model directory is laid out as SageMaker unpacks model.tar.gz (the handlers in
`code/`), the server is stopped and removed on close, and `pid` is the host pid whose process
tree is the whole server (for memory and open files).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import psutil

from harness.bench.workload import BenchRequest

# SageMaker gives a container 4 minutes to answer /ping 200 (S2).
START_TIMEOUT_S = 240.0
POLL_S = 0.05
STOP_TIMEOUT_S = 30


class ServerError(RuntimeError):
    """The server could not start, or never served."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stage_model(model_dir: Path, code_dir: Path | None, into: Path, *,
                requirements: bool = True) -> Path:
    """`into`/model: the model's files (hard links where the file system allows, else copies)
    with the handlers of `code_dir` as code/, as SageMaker unpacks model.tar.gz; without
    code/requirements.txt unless `requirements`."""
    staged = into / "model"

    def link_or_copy(source: str, destination: str) -> object:
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)
        return destination

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(model_dir, staged, copy_function=link_or_copy, ignore=ignore)
    if code_dir is not None:
        shutil.rmtree(staged / "code", ignore_errors=True)
        shutil.copytree(code_dir, staged / "code", ignore=ignore)
    if not requirements:
        (staged / "code" / "requirements.txt").unlink(missing_ok=True)
    return staged


class Server:
    """A started server; `base_url` answers once `wait_until_serving` returned."""

    base_url: str
    name: str
    started: float

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def logs(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def wait_until_serving(self, request: BenchRequest,
                           timeout_s: float = START_TIMEOUT_S) -> float:
        """Send `request` until it is answered 200; seconds from the server's start (process
        or `docker run`) to that first successful invocation."""
        deadline = self.started + timeout_s
        headers = {name: value for name, value in (("Content-Type", request.content_type),
                                                   ("Accept", request.accept)) if value}
        last = "no answer"
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            while time.perf_counter() < deadline:
                if not self.running():
                    raise ServerError(f"{self.name} exited before serving:\n"
                                      f"{self.logs()[-3000:]}")
                try:
                    reply = client.post("/invocations", content=request.body, headers=headers)
                    if reply.status_code == 200:
                        return time.perf_counter() - self.started
                    last = f"{reply.status_code} {reply.text[:200]}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(POLL_S)
        raise ServerError(f"{self.name} did not serve within {timeout_s:g} s (last: {last}):\n"
                          f"{self.logs()[-3000:]}")

    def running(self) -> bool:
        raise NotImplementedError


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


class ContainerServer(Server):
    """`docker run -d IMAGE serve` with the staged model at /opt/ml/model (read-only) and port
    8080 published on 127.0.0.1 only.

    `address`: "published" sends the load to that port, through Docker's userland proxy (what
    a client of `docker compose up` on this machine gets; it adds 0.2-0.3 ms per request here);
    "bridge" sends it to the container's own address on its Docker network, which measures the
    server alone."""

    def __init__(self, image: str, model_dir: Path, code_dir: Path | None,
                 environ: Mapping[str, str] | None = None, *,
                 name_prefix: str = "smlocal-bench", address: str = "published") -> None:
        self.name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
        self._scratch = tempfile.TemporaryDirectory(prefix="smlocal-bench-")
        staged = stage_model(model_dir, code_dir, Path(self._scratch.name))
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        options = ["-v", f"{staged.resolve()}:/opt/ml/model:ro",
                   "-p", f"127.0.0.1:{port}:8080"]
        for key, value in (environ or {}).items():
            options += ["-e", f"{key}={value}"]
        self.started = time.perf_counter()
        result = _docker("run", "-d", "--name", self.name, *options, image, "serve")
        if result.returncode != 0:
            self._scratch.cleanup()
            raise ServerError(f"docker run {image} failed: {result.stderr.strip()[-500:]}")
        if address == "bridge":
            inspected = _docker("inspect", "--format",
                                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                                self.name)
            addresses = inspected.stdout.split()
            if inspected.returncode != 0 or not addresses:
                self.close()
                raise ServerError(f"{self.name} has no address on a Docker network")
            self.base_url = f"http://{addresses[0]}:8080"

    @property
    def pid(self) -> int:
        result = _docker("inspect", "--format", "{{.State.Pid}}", self.name)
        pid = int(result.stdout.strip() or 0)
        if result.returncode != 0 or pid <= 0:
            raise ServerError(f"{self.name} is not running")
        return pid

    def running(self) -> bool:
        result = _docker("inspect", "--format", "{{.State.Running}}", self.name)
        return result.stdout.strip() == "true"

    def logs(self) -> str:
        result = _docker("logs", self.name)
        return result.stdout + result.stderr

    def close(self) -> None:
        _docker("rm", "-f", "-v", self.name, timeout=STOP_TIMEOUT_S + 30)
        self._scratch.cleanup()


class HostServer(Server):
    """`smlocal serve` (this interpreter's harness.cli) on 127.0.0.1, settings from `environ`
    on top of this process's environment."""

    def __init__(self, model_dir: Path, code_dir: Path | None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.name = "smlocal serve"
        self._scratch = tempfile.TemporaryDirectory(prefix="smlocal-bench-")
        self._log_path = Path(self._scratch.name) / "serve.log"
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "harness.cli", "serve", "--model-dir", str(model_dir),
                   "--host", "127.0.0.1", "--port", str(port)]
        if code_dir is not None:
            command += ["--code", str(code_dir)]
        self.started = time.perf_counter()
        with self._log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **(environ or {})})

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> str:
        return self._log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._scratch.cleanup()


# What the AWS image's entrypoint runs for `serve`, with the one path the toolkit hard-codes
# outside SAGEMAKER_BASE_DIR and the working directory (TorchServe's properties file, /etc)
# moved into the server's scratch directory, and the entrypoint's worker count (S26).
REFERENCE_WRAPPER = """
import multiprocessing, os, sys
os.environ["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(multiprocessing.cpu_count())
from sagemaker_pytorch_serving_container import serving, torchserve
torchserve.TS_CONFIG_FILE = sys.argv[1]
serving.main()
"""


class VenvReferenceServer(Server):
    """The AWS serving stack from `venv` (sagemaker-pytorch-inference, TorchServe, and what the
    handlers import; Java on PATH), without Docker.

    It runs in its own pid namespace (`unshare --pid --fork --mount-proc`): the toolkit finds
    TorchServe's JVM by scanning every process on the machine, and TorchServe daemonizes, so
    on the host it could pick another server's JVM and its JVM would outlive it; in the
    namespace every process is under one pid and goes with it. The model is staged under a
    scratch SAGEMAKER_BASE_DIR (without code/requirements.txt, see below), which is also the
    working directory (TorchServe's model store), and TorchServe's metrics port is a free one.
    """

    def __init__(self, venv: Path, model_dir: Path, code_dir: Path | None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.name = f"AWS stack from {venv}"
        self._scratch = tempfile.TemporaryDirectory(prefix="smlocal-bench-aws-")
        base = Path(self._scratch.name)
        # The toolkit would pip-install code/requirements.txt into the venv itself (S15) and
        # change it (it once upgraded setuptools past what the toolkit imports); the venv
        # already holds what the handlers need.
        stage_model(model_dir, code_dir, base, requirements=False)
        self._log_path = base / "serve.log"
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        bin_dir = venv.resolve() / "bin"
        env = {**os.environ, **(environ or {}),
               "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(port),
               "TS_METRICS_ADDRESS": f"http://127.0.0.1:{free_port()}",
               "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(venv)}
        command = ["unshare", "--pid", "--fork", "--mount-proc", str(bin_dir / "python"), "-c",
                   REFERENCE_WRAPPER, str(base / "sagemaker-ts.properties")]
        self.started = time.perf_counter()
        with self._log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=base)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> str:
        return self._log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        # Killing `unshare` leaves the namespace's init; killing that ends the namespace.
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            child.kill()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._scratch.cleanup()
