"""`docker run IMAGE train`, as SageMaker runs a training job (T1, T4, T5, T11)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from container.training.paths import TrainingPaths
from harness.train import lay_out_job

pytestmark = pytest.mark.docker


@pytest.mark.slow
def test_t1_t5_train_on_small_cola_writes_model_and_success(docker_trained) -> None:
    result, paths = docker_trained.result, docker_trained.paths
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert paths.success_file.read_text() == ""
    assert not paths.failure_file.exists()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (paths.model_dir / name).is_file(), name
    metrics = json.loads((paths.output_data_dir / "metrics.json").read_text())
    assert metrics["train_samples"] == 256
    assert metrics["final"]["testing"]["n"] == 64
    assert "Train Epoch: 1 [0/256 (0%)]" in result.stdout + result.stderr


def test_t11_failing_script_exits_1_with_the_toolkit_failure_text(
    containers, small_cola_dir: Path, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(textwrap.dedent("""
        import sys
        print("about to fail", file=sys.stderr)
        raise ValueError("no such column: sentence")
    """))
    paths = TrainingPaths(tmp_path / "opt_ml")
    lay_out_job(paths, small_cola_dir, code, "train.py", {"epochs": "1"}, "smlocal-failing-job")
    result = containers.train(paths, code)
    assert result.returncode == 1
    assert paths.failure_file.read_text() == (
        "ExecuteUserScriptError:\n"
        "ExitCode 1\n"
        'ErrorMessage "ValueError: no such column: sentence"\n'
        'Command "/opt/venv/bin/python3 train.py --epochs 1"'
    )
    assert not paths.success_file.exists()
    assert "about to fail" in result.stdout + result.stderr
