"""docker-compose.yml and the train service's job config, read without an engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from container.training.config import load_config
from container.training.paths import TrainingPaths

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, dict[str, object]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]


def test_serve_is_loopback_only_read_only_and_stops_fast() -> None:
    serve = services()["serve"]
    assert serve["command"] == "serve"
    assert serve["init"] is True  # E4: `down` in about a second
    assert all(str(port).startswith("127.0.0.1:") for port in serve["ports"])  # E5
    assert "${SMLOCAL_MODEL_DIR:-./.smlocal/model}:/opt/ml/model:ro" in serve["volumes"]
    assert "/ping" in " ".join(serve["healthcheck"]["test"])
    assert "profiles" not in serve  # `docker compose up` starts it


def test_train_is_behind_a_profile_and_writes_where_serve_reads() -> None:
    train = services()["train"]
    assert train["profiles"] == ["train"] and train["command"] == "train"
    assert "${SMLOCAL_MODEL_DIR:-./.smlocal/model}:/opt/ml/model" in train["volumes"]
    channels = {volume.rsplit(":", 2)[1] for volume in train["volumes"]
                if ":/opt/ml/input/data/" in volume}
    assert channels == {f"/opt/ml/input/data/{c}"
                        for c in ("training", "testing", "validation", "ood")}


def test_the_default_job_config_is_a_valid_single_host_job(tmp_path: Path) -> None:
    paths = TrainingPaths(tmp_path)
    shutil.copytree(ROOT / "docker" / "train" / "config", paths.input_config_dir)
    config = load_config(paths)
    assert config.entry_point == "train.py"
    assert config.submit_directory == "/opt/ml/code"
    assert config.hosts == ["algo-1"] and config.current_host == "algo-1"
    assert config.channels == ["ood", "testing", "training", "validation"]
    assert config.user_hyperparameters == {"epochs": 1}
    # Values are JSON-encoded strings, as the SDK writes them (T2).
    raw = json.loads(paths.hyperparameters_file.read_text())
    assert all(isinstance(value, str) for value in raw.values())
