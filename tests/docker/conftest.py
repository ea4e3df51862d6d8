"""The smlocal image on a real Docker engine: building it, containers, compose projects.

Every container and compose project a test starts carries a unique name and is removed in a
`finally`, so a failing test leaves nothing running. Traffic goes to 127.0.0.1 only (E5).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from container.training.paths import TrainingPaths
from harness.train import lay_out_job

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"
IMAGE = os.environ.get("SMLOCAL_TEST_IMAGE", "smlocal:latest")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LABEL = "smlocal.test=1"
# A few sentences the trained classifier scores; the last one is long enough to be truncated.
SENTENCES = [
    "The boy quickly ran to the store.",
    "Ran the store boy quickly to.",
    "Sally gave the book to Bill and Bill read it cover to cover twice before sunrise, "
    "which surprised nobody who knew how much he liked long novels about the sea and ships.",
]
# A trained model in seconds: one epoch over the 256 rows of the small CoLA subset.
QUICK_HYPERPARAMETERS = {"epochs": "1", "batch-size": "32", "test-batch-size": "64",
                         "num-threads": "2", "patience": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def docker(*args: str, timeout: float = 120,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): "
                             f"{result.stderr.strip()[-2000:]}")
    return result


@dataclass
class Response:
    status: int | None  # None: no connection
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> object:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None, content_type: str | None = None,
         timeout: float = 30) -> Response:
    assert url.startswith("http://127.0.0.1:"), "tests talk to loopback only"
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Response(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), dict(exc.headers))
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return Response(None)


def wait_for_ping(base_url: str, timeout: float = 120) -> tuple[float, list[int | None]]:
    """Poll /ping until 200: seconds waited and the distinct statuses seen, in order."""
    started = time.perf_counter()
    seen: list[int | None] = []
    while time.perf_counter() - started < timeout:
        status = http("GET", f"{base_url}/ping", timeout=2).status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == 200:
            return time.perf_counter() - started, seen
        time.sleep(0.05)
    raise AssertionError(f"/ping not 200 within {timeout} s; statuses seen: {seen}")


def invoke(base_url: str, sentences: Sequence[str]) -> list[list[float]]:
    response = http("POST", f"{base_url}/invocations", json.dumps(list(sentences)).encode(),
                    "application/json", timeout=60)
    assert response.status == 200, response.body[:2000]
    logits = response.json()
    assert isinstance(logits, list)
    return logits


def eager_logits(model_dir: Path, sentences: Sequence[str]) -> list[list[float]]:
    """The reference every served answer is held to: the eager model, in this process, with
    the handlers' tokenization (truncation at 64, padding to the longest)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(list(sentences), truncation=True, max_length=64, padding="longest",
                        return_tensors="pt")
    with torch.no_grad():
        logits: list[list[float]] = model(**encoded).logits.tolist()
    return logits


class Containers:
    """`docker run -d` with a unique name; everything started is removed at teardown."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.names: list[str] = []

    def start(self, *command: str, options: Sequence[str] = ()) -> str:
        name = f"smlocal-test-{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        docker("run", "-d", "--name", name, "--label", LABEL, *options, self.image, *command)
        return name

    def run(self, *command: str, options: Sequence[str] = (),
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run to completion (like SageMaker runs a training job); the container is removed."""
        name = f"smlocal-test-{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        return docker("run", "--name", name, "--label", LABEL, *options, self.image, *command,
                      timeout=timeout, check=False)

    def train(self, paths: TrainingPaths, code_dir: Path) -> subprocess.CompletedProcess[str]:
        """`docker run IMAGE train` as SDK local mode runs it: the /opt/ml tree from the host,
        local code at /opt/ml/code."""
        return self.run("train", options=[
            "-v", f"{paths.base}:/opt/ml", "-v", f"{code_dir}:/opt/ml/code:ro",
        ])

    def logs(self, name: str) -> str:
        result = docker("logs", name, check=False)
        return result.stdout + result.stderr

    def remove_all(self) -> None:
        for name in self.names:
            docker("rm", "-f", "-v", name, check=False, timeout=60)
        self.names.clear()


@pytest.fixture(scope="session")
def tools() -> SimpleNamespace:
    """This module's helpers for the test modules (which cannot import a conftest)."""
    return SimpleNamespace(
        root=ROOT, handlers=HANDLERS, sentences=SENTENCES, docker=docker, http=http,
        free_port=free_port, wait_for_ping=wait_for_ping, invoke=invoke,
        eager_logits=eager_logits,
        lay_out_quick_job=lay_out_quick_job, quick_hyperparameters=QUICK_HYPERPARAMETERS,
    )


@pytest.fixture(scope="session")
def smlocal_image() -> str:
    """The image, through the same code path as `smlocal image build` (cheap when cached)."""
    from harness.cli import main

    assert main(["image", "build", "--tag", IMAGE]) == 0
    return IMAGE


REFERENCE_IMAGE = os.environ.get("SMLOCAL_TEST_REFERENCE_IMAGE", "smlocal-reference:latest")


@pytest.fixture(scope="session")
def reference_image() -> str:
    """The reference image (the AWS serving stack) through `smlocal image build --reference`
    (cheap when cached: `make test` builds it before pytest)."""
    from harness.cli import main

    assert main(["image", "build", "--reference", "--tag", REFERENCE_IMAGE]) == 0
    return REFERENCE_IMAGE


@pytest.fixture
def containers(smlocal_image: str) -> Iterator[Containers]:
    running = Containers(smlocal_image)
    try:
        yield running
    finally:
        running.remove_all()


@dataclass(frozen=True)
class DockerJob:
    paths: TrainingPaths
    result: subprocess.CompletedProcess[str]


def lay_out_quick_job(base: Path, data_dir: Path, code_dir: Path,
                      hyperparameters: dict[str, str]) -> TrainingPaths:
    """The config files and channels of a single-host job, written by the harness (T2-T4)."""
    paths = TrainingPaths(base)
    lay_out_job(paths, data_dir, code_dir, "train.py", hyperparameters, "smlocal-docker-test")
    return paths


@pytest.fixture(scope="session")
def docker_trained(smlocal_image: str, small_cola_dir: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerJob]:
    """handlers/train.py trained by `docker run IMAGE train` on the small CoLA subset."""
    paths = lay_out_quick_job(tmp_path_factory.mktemp("docker-job") / "opt_ml", small_cola_dir,
                              HANDLERS, QUICK_HYPERPARAMETERS)
    running = Containers(smlocal_image)
    try:
        result = running.train(paths, HANDLERS)
        yield DockerJob(paths=paths, result=result)
    finally:
        running.remove_all()


@pytest.fixture(scope="session")
def compose_command() -> list[str]:
    """v2 `docker compose` where the plugin exists, else v1 `docker-compose` (E4)."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    reason = "neither `docker compose` nor `docker-compose` is installed"
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


class ComposeProject:
    """One `docker compose -p NAME` project of the repository's docker-compose.yml."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        self.name = f"smlocal-test-{uuid.uuid4().hex[:10]}"
        self.env = dict(os.environ, **env)

    def __call__(self, *args: str, timeout: float = 300,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.command, "-f", str(ROOT / "docker-compose.yml"), "-p", self.name, *args],
            capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def down(self) -> None:
        self("--profile", "train", "down", "--volumes", "--remove-orphans", "--timeout", "5",
             check=False, timeout=120)


@pytest.fixture
def compose_project(compose_command: list[str], smlocal_image: str) -> Iterator[object]:
    """A factory of compose projects (env: the SMLOCAL_* variables); all are downed after."""
    projects: list[ComposeProject] = []

    def make(env: dict[str, str]) -> ComposeProject:
        project = ComposeProject(compose_command, {"SMLOCAL_IMAGE": smlocal_image, **env})
        projects.append(project)
        return project

    try:
        yield make
    finally:
        for project in projects:
            project.down()
