"""Ctrl-C and SIGTERM at any point of `smlocal train` and `smlocal serve` leave nothing running
(issue 14 item 6; T6, S1).

Real processes: the CLI is started as a terminal starts it (a session of its own, so that Ctrl-C
is SIGINT to its whole process group, as a terminal sends it), a phase is awaited, the signal is
sent, and then every process that had been started under the CLI must be gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@dataclass
class Cli:
    """`smlocal ARGS` in a session of its own, its output collected line by line."""

    args: list[str]
    process: subprocess.Popen[str] = field(init=False)
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", *self.args], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
            env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1"),
            # A shell starts background jobs with SIGINT ignored, and children inherit that;
            # a terminal's foreground command has the default, so Ctrl-C means something.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process.poll() is None, f"exited before {what}:\n{self.output[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} in {timeout} s:\n{self.output[-3000:]}"
            time.sleep(0.1)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def send(self, signum: int) -> None:
        """Ctrl-C as a terminal sends it (the foreground process group); SIGTERM as `kill` or a
        supervisor sends it (the process alone)."""
        if signum == signal.SIGINT:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signum)

    def finish(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        for process in [*self.descendants(), psutil.Process(self.process.pid)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def still_running(processes: list[psutil.Process]) -> list[str]:
    """Those of `processes` that are still alive (the same process, not a reused pid)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_gone(processes: list[psutil.Process], timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (alive := still_running(processes)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.fixture
def cli() -> Iterator[Callable[[list[str]], Cli]]:
    started: list[Cli] = []

    def start(args: list[str]) -> Cli:
        started.append(Cli(args))
        return started[-1]

    yield start
    for running in started:  # a failed assertion must not leave a job running
        if running.process.poll() is None:
            running.kill()


SIGNALS = [pytest.param(signal.SIGINT, id="ctrl-c"), pytest.param(signal.SIGTERM, id="sigterm")]

# --- smlocal train ---------------------------------------------------------------------------

TRAIN_PHASES = {
    # The runtime has started the script, which is still importing torch and loading the model.
    "starting": "running",
    # The script is inside its first epoch.
    "training": "Train Epoch: 1 [",
}


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("phase", list(TRAIN_PHASES))
def test_t6_train_stops_on_a_signal_and_leaves_no_process(
        phase: str, signum: int, cli: Callable[[list[str]], Cli], small_cola_dir: Path,
        tmp_path: Path) -> None:
    job = cli(["train", "--data", str(small_cola_dir), "--work-dir", str(tmp_path / "job"),
               "-H", "epochs=2", "-H", "log-interval=1", "-H", "num-threads=1"])
    marker = TRAIN_PHASES[phase]
    job.wait_for(lambda: marker in job.output, f"{marker!r}")
    started = job.descendants()
    assert any("train.py" in " ".join(p.cmdline()) for p in started), job.output[-2000:]
    job.send(signum)
    exit_code = job.finish()
    assert wait_gone(started) == [], job.output[-3000:]
    assert exit_code == 128 + signum, job.output[-3000:]
    name = signal.Signals(signum).name
    last = job.output.strip().splitlines()[-1]
    assert last.startswith(f"smlocal train: error: stopped by {name}"), job.output[-3000:]
    assert "Traceback" not in job.output.split(marker, 1)[0]


def test_t4_t6_a_stopped_smlocal_train_started_again_resumes(
        cli: Callable[[list[str]], Cli], small_cola_dir: Path, tmp_path: Path) -> None:
    """The user's flow: `smlocal train --checkpoint-dir D` stopped in epoch 2, the same command
    again (a new job directory) resumes after epoch 1 instead of starting over."""
    checkpoints = tmp_path / "checkpoints"
    args = ["train", "--data", str(small_cola_dir), "--checkpoint-dir", str(checkpoints),
            "-H", "epochs=2", "-H", "log-interval=1", "-H", "num-threads=1"]
    first = cli([*args, "--work-dir", str(tmp_path / "first")])
    first.wait_for(lambda: "Train Epoch: 2 [" in first.output, "epoch 2")
    first.send(signal.SIGTERM)
    assert first.finish() == 128 + signal.SIGTERM
    assert f"checkpoints in {tmp_path / 'first' / 'checkpoints'}" in first.output
    again = cli([*args, "--work-dir", str(tmp_path / "again")])
    assert again.finish(timeout=600) == 0, again.output[-3000:]
    assert "Resuming after epoch 1 from" in again.output
    assert "Train Epoch: 1 " not in again.output and "Train Epoch: 2 " in again.output


# --- smlocal serve ---------------------------------------------------------------------------


def ping(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return None


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SERVE_PHASES: dict[str, Callable[[int], bool]] = {
    "loading": lambda port: ping(port) == 500,  # listening, the model not loaded yet (S1, S2)
    "ready": lambda port: ping(port) == 200,
}


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("phase", list(SERVE_PHASES))
def test_s1_serve_stops_on_a_signal_and_leaves_no_process(
        phase: str, signum: int, cli: Callable[[list[str]], Cli], bert_model_dir: Path) -> None:
    port = free_port()
    server = cli(["serve", "--model-dir", str(bert_model_dir), "--code", str(ROOT / "handlers"),
                  "--port", str(port)])
    server.wait_for(lambda: SERVE_PHASES[phase](port), f"/ping in phase {phase}")
    started = server.descendants()
    server.send(signum)
    exit_code = server.finish(timeout=60)
    assert wait_gone(started) == [], server.output[-3000:]
    assert exit_code in (0, 128 + signum, -signum), server.output[-3000:]
    assert ping(port) is None


# --- smlocal local-mode fit and deploy (the SDK, docker-compose, containers) ------------------

IMAGE = os.environ.get("SMLOCAL_TEST_IMAGE", "smlocal:latest")


@pytest.fixture(scope="module")
def image() -> str:
    from harness.image import build_image

    build_image(tag=IMAGE)  # cached: seconds when nothing changed
    return IMAGE


def containers_of(root: Path) -> list[str]:
    from harness.local_mode.cleanup import containers_under

    return containers_under(root)


def assert_no_docker_leak(root: Path, ours: list[str]) -> None:
    """None of this test's containers, running or not; the SDK's shared network only if some
    other container (not this test's) still uses it."""
    from harness.local_mode.cleanup import NETWORK

    assert containers_of(root) == []
    listed = subprocess.run(["docker", "ps", "--all", "--format", "{{.Names}}"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert set(ours).isdisjoint(listed), ours
    inspected = subprocess.run(["docker", "network", "inspect", NETWORK, "--format",
                                "{{range .Containers}}{{.Name}} {{end}}"],
                               capture_output=True, text=True, check=False)
    if inspected.returncode == 0:  # someone else's local-mode container may hold it
        attached = inspected.stdout.split()
        assert attached and set(ours).isdisjoint(attached), attached


@pytest.mark.docker
@pytest.mark.sdk
@pytest.mark.parametrize("signum", SIGNALS)
def test_l1_local_mode_fit_stops_on_a_signal_and_leaves_nothing(
        signum: int, cli: Callable[[list[str]], Cli], image: str, small_cola_dir: Path,
        tmp_path: Path) -> None:
    root = tmp_path / "root"
    job = cli(["local-mode", "fit", "--data", str(small_cola_dir), "--root", str(root),
               "--code", str(ROOT / "handlers"), "--image", image, "-H", "epochs=2",
               "-H", "log-interval=1", "-H", "num-threads=1", "-H", "patience=0"])
    job.wait_for(lambda: "Train Epoch: 1 [" in job.output, "the first epoch")
    ours = containers_of(root)
    started = job.descendants()
    assert ours and any("docker-compose" in " ".join(p.cmdline()) for p in started)
    job.send(signum)
    exit_code = job.finish(timeout=180)
    assert wait_gone(started) == [], job.output[-3000:]
    assert_no_docker_leak(root, ours)
    assert exit_code == 130, job.output[-3000:]
    assert job.output.strip().splitlines()[-1] == "smlocal local-mode: interrupted"


@pytest.fixture(scope="module")
def model_archive(bert_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.package import package_model

    out = tmp_path_factory.mktemp("archive") / "model.tar.gz"
    package_model(bert_model_dir, ROOT / "handlers", out, entry_point="inference.py")
    return out


DEPLOY_PHASES: dict[str, Callable[[Cli, Path, int], bool]] = {
    # The SDK has started the endpoint's container; the model is not served yet.
    "starting": lambda deploy, root, port: bool(containers_of(root)) and ping(port) != 200,
    "ready": lambda deploy, root, port: "ready at" in deploy.output,
}


@pytest.mark.docker
@pytest.mark.sdk
@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("phase", list(DEPLOY_PHASES))
def test_l5_local_mode_deploy_stops_on_a_signal_and_leaves_nothing(
        phase: str, signum: int, cli: Callable[[list[str]], Cli], image: str,
        model_archive: Path, tmp_path: Path) -> None:
    root, port = tmp_path / "root", free_port()
    deploy = cli(["local-mode", "deploy", "--model-data", str(model_archive), "--root",
                  str(root), "--code", str(ROOT / "handlers"), "--image", image,
                  "--port", str(port)])
    ready = DEPLOY_PHASES[phase]
    deploy.wait_for(lambda: ready(deploy, root, port), f"phase {phase}")
    ours = containers_of(root)
    started = deploy.descendants()
    assert ours, deploy.output[-2000:]
    deploy.send(signum)
    exit_code = deploy.finish(timeout=180)
    assert wait_gone(started) == [], deploy.output[-3000:]
    assert_no_docker_leak(root, ours)
    assert ping(port) is None
    last = deploy.output.strip().splitlines()[-1]
    if phase == "ready":  # Ctrl-C or `down` is how a foreground endpoint ends: exit 0
        assert exit_code == 0 and last.startswith("endpoint ") and last.endswith(" deleted")
    else:
        assert exit_code == 130 and last == "smlocal local-mode: interrupted", deploy.output[-3000:]
