"""A serving container on a loopback port, started as SageMaker starts one: `docker run IMAGE
serve` with the model at /opt/ml/model (and the handlers at /opt/ml/model/code).

Used by `smlocal contract --compare` for both images, and by the serving benchmarks for the
reference image (`start_reference`). Every container carries the label `smlocal.serving=1` and a
name with the caller's prefix; `stop()` removes it.

Ready is not the same on both images: the smlocal image answers /ping 200 once every worker has
loaded the model, TorchServe as soon as its frontend is up, before model_fn has run
(docs/fidelity.md). So a TorchServe container is ready when its management API (on the same
port) lists every worker of the model as READY.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import docker.errors
import httpx
from docker.models.containers import Container

import docker
from harness.errors import CommandError

MODEL_DIR = "/opt/ml/model"
CODE_DIR = f"{MODEL_DIR}/code"
PORT = 8080
LABEL = "smlocal.serving"
# The toolkit registers the model under this name (its DEFAULT_TS_MODEL_NAME).
TORCHSERVE_MODEL = "model"
DEFAULT_READY_S = 240.0


class ServingContainerError(CommandError):
    """The container could not be started, or did not become ready (its log tail included)."""


@dataclass
class ServingContainer:
    """A running serving container: its base URL on 127.0.0.1, its log, and `stop()`."""

    image: str
    name: str
    url: str
    container: Container = field(repr=False)
    # The temporary model directory with the handlers as code/, removed on stop.
    staged: Path | None = None

    def logs(self, tail: int = 200) -> str:
        try:
            raw: bytes = self.container.logs(tail=tail)
        except docker.errors.NotFound:
            return ""
        return raw.decode("utf-8", errors="replace")

    def running(self) -> bool:
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return bool(self.container.status == "running")

    def stop(self) -> None:
        """Remove the container at once (SIGKILL): the AWS entrypoint ignores SIGTERM after
        TorchServe exits, so a graceful stop would wait docker's full timeout."""
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)
        _remove_staged(self.staged)
        self.staged = None

    def wait_ready(self, timeout_s: float = DEFAULT_READY_S) -> float:
        """Seconds until the model answers: /ping 200, and on TorchServe every worker READY.
        Raises ServingContainerError with the log tail if the container exits or time runs
        out."""
        started = time.monotonic()
        deadline = started + timeout_s
        last = "no answer"
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.running():
                    raise ServingContainerError(
                        f"{self.image} exited before it was ready:\n{self.logs(40)}")
                try:
                    last = _readiness(client)
                except httpx.HTTPError as exc:
                    last = f"no answer ({type(exc).__name__})"
                if last == "ready":
                    return time.monotonic() - started
                time.sleep(0.25)
        raise ServingContainerError(
            f"{self.image} not ready after {timeout_s:g} s ({last}):\n{self.logs(40)}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _readiness(client: httpx.Client) -> str:
    ping = client.get("/ping")
    if ping.status_code != 200:
        return f"/ping {ping.status_code}"
    described = client.get(f"/models/{TORCHSERVE_MODEL}")
    if described.status_code == 404 or "json" not in described.headers.get("content-type", ""):
        return "ready"  # not TorchServe: /ping 200 means loaded
    try:
        models: Any = described.json()
        workers = models[0]["workers"]
    except (ValueError, LookupError, TypeError):
        return "ready"
    states = [str(worker.get("status")) for worker in workers]
    if states and all(state == "READY" for state in states):
        return "ready"
    return f"TorchServe workers {states or 'none'}"


def start_serving_container(
    image: str,
    model_dir: Path,
    *,
    code_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    name_prefix: str = "smlocal-serve",
    cpus: float | None = None,
) -> ServingContainer:
    """`docker run -d IMAGE serve` with `model_dir` at /opt/ml/model (read-only; with `code_dir`
    as its code/ when given, see `stage_model`), published on 127.0.0.1:`port` (None: a free port).
    Returns once the container runs; call `wait_ready()` before sending requests."""
    model_dir = model_dir.resolve()
    if not model_dir.is_dir():
        raise ServingContainerError(f"model directory {model_dir} does not exist", 2)
    staged: Path | None = None
    if code_dir is not None:
        if not code_dir.is_dir():
            raise ServingContainerError(f"code directory {code_dir} does not exist", 2)
        staged = stage_model(model_dir, code_dir)
    volumes = {str(staged or model_dir): {"bind": MODEL_DIR, "mode": "ro"}}
    name = f"{name_prefix}-{uuid.uuid4().hex[:10]}"
    host_port = port if port is not None else free_port()
    try:
        client = docker.from_env()
        # Present, or a clear error: `run` would try a registry that is not there.
        client.images.get(image)
        container = client.containers.run(
            image, "serve", detach=True, name=name, environment=dict(env or {}),
            volumes=volumes, ports={f"{PORT}/tcp": ("127.0.0.1", host_port)},
            labels={LABEL: "1"}, nano_cpus=int(cpus * 1e9) if cpus is not None else None,
        )
    except docker.errors.DockerException as exc:
        _remove_staged(staged)
        if isinstance(exc, docker.errors.ImageNotFound):
            hint = " --reference" if "reference" in image else ""
            raise ServingContainerError(
                f"image {image} not found: build it with `smlocal image build{hint}`", 3) from exc
        raise ServingContainerError(f"cannot start {image}: {exc}", 3) from exc
    return ServingContainer(image=image, name=name, url=f"http://127.0.0.1:{host_port}",
                            container=container, staged=staged)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stage_model(model_dir: Path, code_dir: Path) -> Path:
    """model_dir with code_dir as its code/, in a temporary directory: the model's files hard
    linked (copied across file systems), the code copied. The caller's directories are left as
    they are, and the container sees the layout of an unpacked model.tar.gz (S14)."""
    staged = Path(tempfile.mkdtemp(prefix="smlocal-model-"))
    model = staged / "model"

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(model_dir, model, copy_function=link,
                    ignore=shutil.ignore_patterns("code"))
    shutil.copytree(code_dir, model / "code",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return model


def _remove_staged(staged: Path | None) -> None:
    if staged is not None:
        shutil.rmtree(staged.parent, ignore_errors=True)


def reference_environment(
    workers: int | None = None,
    batch_size: int | None = None,
    max_batch_delay_ms: int | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The SAGEMAKER_* settings that choose workers and batching on the AWS stack.

    The AWS entrypoint overwrites SAGEMAKER_MODEL_SERVER_WORKERS with the CPU count, so the
    worker count is set through SAGEMAKER_TS_MIN_WORKERS/MAX_WORKERS; as soon as any
    SAGEMAKER_TS_* variable is set the toolkit uses them, with 1 worker unless told otherwise.
    """
    settings = dict(env or {})
    if workers is not None:
        settings["SAGEMAKER_TS_MIN_WORKERS"] = str(workers)
        settings["SAGEMAKER_TS_MAX_WORKERS"] = str(workers)
    if batch_size is not None:
        settings["SAGEMAKER_TS_BATCH_SIZE"] = str(batch_size)
    if max_batch_delay_ms is not None:
        settings["SAGEMAKER_TS_MAX_BATCH_DELAY"] = str(max_batch_delay_ms)
    return settings


def start_reference(
    model_dir: Path,
    *,
    code_dir: Path | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    max_batch_delay_ms: int | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    image: str | None = None,
    cpus: float | None = None,
    ready_timeout_s: float = DEFAULT_READY_S,
) -> ServingContainer:
    """A reference-image container serving `model_dir`, ready (every TorchServe worker has
    loaded the model): `.url` is its base URL, `.stop()` removes it. See
    `reference_environment` for how `workers`, `batch_size` and `max_batch_delay_ms` map."""
    from harness.reference_image import REFERENCE_TAG

    served = start_serving_container(
        image or REFERENCE_TAG, model_dir, code_dir=code_dir,
        env=reference_environment(workers, batch_size, max_batch_delay_ms, env), port=port,
        name_prefix="smlocal-reference", cpus=cpus,
    )
    try:
        served.wait_ready(ready_timeout_s)
    except BaseException:
        served.stop()
        raise
    return served
