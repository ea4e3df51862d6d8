"""A job tree builder for the training runtime's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from container.training.paths import TrainingPaths

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Job:
    paths: TrainingPaths
    source_dir: Path

    def write_script(self, body: str, name: str = "train.py") -> Path:
        path = self.source_dir / name
        path.write_text(textwrap.dedent(body))
        return path

    def configure(self, hyperparameters: dict[str, object], entry_point: str = "train.py",
                  hosts: list[str] | None = None, current_host: str = "algo-1",
                  channels: tuple[str, ...] = ("testing", "training"),
                  submit_directory: str | None = None) -> None:
        config = self.paths.input_config_dir
        config.mkdir(parents=True, exist_ok=True)
        encoded = {key: json.dumps(value) for key, value in hyperparameters.items()}
        encoded |= {
            "sagemaker_program": json.dumps(entry_point),
            "sagemaker_submit_directory": json.dumps(submit_directory or str(self.source_dir)),
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": json.dumps("smlocal-test-job"),
            "sagemaker_region": json.dumps("us-west-2"),
        }
        (config / "hyperparameters.json").write_text(json.dumps(encoded))
        (config / "resourceconfig.json").write_text(json.dumps({
            "current_host": current_host, "hosts": hosts or [current_host],
            "network_interface_name": "eth0",
        }))
        (config / "inputdataconfig.json").write_text(json.dumps(
            {channel: {"TrainingInputMode": "File"} for channel in channels}
        ))
        for channel in channels:
            self.paths.channel_dir(channel).mkdir(parents=True, exist_ok=True)

    def run(self, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, SAGEMAKER_BASE_DIR=str(self.paths.base), **(extra_env or {}))
        env["PYTHONPATH"] = str(ROOT)
        return subprocess.run([sys.executable, "-m", "container", "train"], env=env,
                              capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def job(tmp_path: Path) -> Job:
    source = tmp_path / "source"
    source.mkdir()
    return Job(paths=TrainingPaths(tmp_path / "opt_ml"), source_dir=source)
