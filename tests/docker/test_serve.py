"""`docker run IMAGE serve`, as SageMaker starts an endpoint (S1, S2, S5, S14)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

# A handler whose model takes 3 s to load, so the loading phase is observable from outside.
SLOW_HANDLER = """
    import time

    def model_fn(model_dir):
        time.sleep(3)
        return "echo"

    def transform_fn(model, data, content_type, accept):
        return data, content_type
"""


@pytest.fixture
def slow_model_dir(tmp_path: Path) -> Path:
    """An unpacked model.tar.gz: the handler travels in code/ (S14)."""
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "code" / "inference.py").write_text(textwrap.dedent(SLOW_HANDLER))
    return model


def start_endpoint(containers, tools, model_dir: Path) -> tuple[str, str]:
    port = tools.free_port()
    name = containers.start("serve", options=[
        "-p", f"127.0.0.1:{port}:8080", "-v", f"{model_dir}:/opt/ml/model:ro",
    ])
    return name, f"http://127.0.0.1:{port}"


def test_s1_s2_ping_is_500_while_loading_then_200(containers, tools, slow_model_dir) -> None:
    name, url = start_endpoint(containers, tools, slow_model_dir)
    seconds, statuses = tools.wait_for_ping(url, timeout=60)
    # Before the server listens the published port refuses (None); then 500 until model_fn
    # returns, then 200.
    assert [status for status in statuses if status is not None] == [500, 200], statuses
    assert seconds >= 3
    echoed = tools.http("POST", f"{url}/invocations", b'"hello"', "application/json")
    assert (echoed.status, echoed.body) == (200, b'"hello"'), containers.logs(name)


@pytest.fixture
def served_model_dir(docker_trained, tools, tmp_path: Path) -> Path:
    """The docker-trained model as an unpacked model.tar.gz: weights, tokenizer, code/ (S14)."""
    assert docker_trained.result.returncode == 0, docker_trained.result.stderr[-2000:]
    model = tmp_path / "served-model"
    shutil.copytree(docker_trained.paths.model_dir, model)
    shutil.copytree(tools.handlers, model / "code",
                    ignore=shutil.ignore_patterns("__pycache__", "train.py"))
    return model


@pytest.mark.slow
def test_s5_sigterm_stops_the_endpoint_within_2_s(containers, tools, served_model_dir) -> None:
    # No --init: SageMaker runs `docker run IMAGE serve`, so the server itself is PID 1. With the
    # BERT loaded, as it will be in the cloud: unloading torch is what used to take the time.
    name, url = start_endpoint(containers, tools, served_model_dir)
    tools.wait_for_ping(url, timeout=120)
    tools.invoke(url, tools.sentences[:1])
    started = time.perf_counter()
    tools.docker("kill", "--signal", "TERM", name)
    while tools.docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true":
        assert time.perf_counter() - started < 10, "still running 10 s after SIGTERM"
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    assert seconds < 2, f"stopped {seconds:.2f} s after SIGTERM"
    exit_code = tools.docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert exit_code == "0", containers.logs(name)
    assert "shut down after signal 15" in containers.logs(name)


@pytest.mark.slow
def test_s1_invocations_give_the_same_logits_as_the_host_server(
    containers, tools, served_model_dir: Path
) -> None:
    """The image serves the docker-trained model exactly as `smlocal serve` does on the host."""
    model = served_model_dir
    host_port = tools.free_port()
    host = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--model-dir", str(model),
         "--host", "127.0.0.1", "--port", str(host_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        started = time.perf_counter()
        _, url = start_endpoint(containers, tools, model)
        _, statuses = tools.wait_for_ping(url, timeout=120)
        ready = time.perf_counter() - started
        assert statuses[-1] == 200
        print(f"container start -> /ping 200: {ready:.2f} s")
        host_url = f"http://127.0.0.1:{host_port}"
        tools.wait_for_ping(host_url, timeout=120)
        in_container = tools.invoke(url, tools.sentences)
        on_host = tools.invoke(host_url, tools.sentences)
        assert len(in_container) == len(tools.sentences)
        assert all(len(pair) == 2 for pair in in_container)
        for got, expected in zip(in_container, on_host, strict=True):
            assert got == pytest.approx(expected, abs=1e-5)
        # One sentence at a time gives the same answers as the batch (padding is masked).
        single = tools.invoke(url, tools.sentences[:1])
        assert single[0] == pytest.approx(in_container[0], abs=1e-4)
    finally:
        host.terminate()
        try:
            host.wait(timeout=15)
        except subprocess.TimeoutExpired:
            host.kill()
