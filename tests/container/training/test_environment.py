"""T10, T13: the environment of the user's script, built from a real config tree."""

from __future__ import annotations

import json
from pathlib import Path

from container.training.config import load_config
from container.training.environment import env_value, script_environment


def environment_of(job) -> dict[str, str]:
    config = load_config(job.paths)
    return script_environment(config, job.paths, "train.py", ["--epochs", "1"], num_gpus=0)


def test_t10_env_values_strings_as_is_none_empty_else_compact_sorted_json() -> None:
    assert env_value("gloo") == "gloo"
    assert env_value(None) == ""
    assert env_value(1) == "1"
    assert env_value(True) == "true"
    assert env_value({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'


def test_t10_paths_channels_and_hyperparameters(job) -> None:
    job.configure({"epochs": 1, "backend": "gloo", "batch-size": 32},
                  channels=("training", "testing", "validation"))
    env = environment_of(job)
    base = job.paths.base
    assert env["SM_MODEL_DIR"] == str(base / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(base / "output/data")
    assert env["SM_OUTPUT_DIR"] == str(base / "output")
    assert env["SM_INPUT_DIR"] == str(base / "input")
    assert env["SM_INPUT_CONFIG_DIR"] == str(base / "input/config")
    assert env["SM_CHANNELS"] == '["testing","training","validation"]'
    assert env["SM_CHANNEL_TRAINING"] == str(base / "input/data/training")
    assert env["SM_CHANNEL_VALIDATION"] == str(base / "input/data/validation")
    assert env["SM_HPS"] == '{"backend":"gloo","batch-size":32,"epochs":1}'
    assert env["SM_HP_EPOCHS"] == "1"
    assert env["SM_HP_BACKEND"] == "gloo"
    assert env["SM_HP_BATCH-SIZE"] == "32"
    assert env["SM_USER_ARGS"] == '["--epochs","1"]'
    assert env["SM_USER_ENTRY_POINT"] == "train.py"
    assert env["SM_MODULE_NAME"] == "train"
    assert env["SM_MODULE_DIR"] == str(job.source_dir)
    assert env["SM_LOG_LEVEL"] == "20"
    assert env["SM_NUM_GPUS"] == "0"
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "local"
    assert env["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert json.loads(env["SM_INPUT_DATA_CONFIG"])["training"] == {"TrainingInputMode": "File"}
    assert env["TRAINING_JOB_NAME"] == env["SAGEMAKER_JOB_NAME"] == "smlocal-test-job"


def test_t10_training_env_holds_everything_as_json(job) -> None:
    job.configure({"epochs": 2})
    training_env = json.loads(environment_of(job)["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == {"epochs": 2}
    assert training_env["hosts"] == ["algo-1"]
    assert training_env["channel_input_dirs"]["testing"].endswith("input/data/testing")
    assert training_env["user_entry_point"] == "train.py"
    assert training_env["is_master"] is True


def test_t13_master_addr_is_the_first_host_and_port_7777(job) -> None:
    job.configure({}, hosts=["algo-2", "algo-1"], current_host="algo-2")
    env = environment_of(job)
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert env["SM_CURRENT_HOST"] == env["CURRENT_HOST"] == "algo-2"
    assert env["MASTER_ADDR"] == "algo-1"
    assert env["MASTER_PORT"] == "7777"
    assert "RANK" not in env and "WORLD_SIZE" not in env


def test_t10_resource_config_is_exported(job, tmp_path: Path) -> None:
    job.configure({})
    resource = json.loads(environment_of(job)["SM_RESOURCE_CONFIG"])
    assert resource["current_host"] == "algo-1"
