"""docker-compose.yml: the train service, then `up` -> healthy -> invoke -> `down` (E4)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def wait_healthy(project, service: str, tools, timeout: float = 180) -> None:
    container = project("ps", "-q", service).stdout.strip()
    assert container, project("ps").stdout
    started = time.perf_counter()
    status = ""
    while time.perf_counter() - started < timeout:
        status = tools.docker("inspect", "--format", "{{.State.Health.Status}}",
                              container).stdout.strip()
        if status == "healthy":
            return
        assert status in ("starting", ""), project("logs", "--no-color", service).stdout[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"{service} is {status!r} after {timeout} s")


@pytest.mark.slow
def test_compose_train_service_writes_the_model_where_serve_finds_it(
    compose_project, tools, small_cola_dir: Path, tmp_path: Path
) -> None:
    # A job's config, written by the harness as for any other job (T2, T3).
    job = tools.lay_out_quick_job(tmp_path / "job", small_cola_dir, tools.handlers,
                                  tools.quick_hyperparameters)
    model, output = tmp_path / "model", tmp_path / "output"
    project = compose_project({
        "SMLOCAL_TRAIN_CONFIG": str(job.input_config_dir),
        "SMLOCAL_DATA_DIR": str(small_cola_dir),
        "SMLOCAL_MODEL_DIR": str(model),
        "SMLOCAL_OUTPUT_DIR": str(output),
    })
    result = project("--profile", "train", "run", "--rm", "train", timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (output / "success").is_file()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (model / name).is_file(), name
    metrics = json.loads((output / "data" / "metrics.json").read_text())
    assert metrics["train_samples"] == 256


@pytest.mark.slow
def test_compose_up_serves_the_model_healthy_invoke_and_down(
    compose_project, tools, docker_trained
) -> None:
    assert docker_trained.result.returncode == 0
    port = tools.free_port()
    project = compose_project({
        "SMLOCAL_MODEL_DIR": str(docker_trained.paths.model_dir),
        "SMLOCAL_PORT": str(port),
    })
    project("up", "-d")
    wait_healthy(project, "serve", tools)
    logits = tools.invoke(f"http://127.0.0.1:{port}", tools.sentences)
    assert len(logits) == len(tools.sentences) and all(len(pair) == 2 for pair in logits)
    # init: true forwards SIGTERM, so `down` does not wait out the 10 s grace period.
    started = time.perf_counter()
    project("down")
    seconds = time.perf_counter() - started
    assert seconds < 5, f"down took {seconds:.1f} s"
    assert project("ps", "-q").stdout.strip() == ""
