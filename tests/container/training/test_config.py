"""T2, T3, T7: the job's config files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from container.training.config import ConfigError, decode_hyperparameter, load_config
from container.training.paths import TrainingPaths


def write_config(base: Path, hps: dict[str, str], resource: dict[str, object] | None = None,
                 data: dict[str, object] | None = None) -> TrainingPaths:
    paths = TrainingPaths(base)
    paths.input_config_dir.mkdir(parents=True)
    paths.hyperparameters_file.write_text(json.dumps(hps))
    if resource is not None:
        paths.resource_config_file.write_text(json.dumps(resource))
    if data is not None:
        paths.input_data_config_file.write_text(json.dumps(data))
    return paths


def test_t7_values_are_json_decoded_and_raw_strings_kept(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {
        "epochs": "1", "lr": "2e-05", "backend": '"gloo"', "flag": "true",
        "nested": '{"a": [1, 2]}', "raw": "not json", "none": "null",
    })
    hps = load_config(paths).user_hyperparameters
    assert hps == {"epochs": 1, "lr": 2e-05, "backend": "gloo", "flag": True,
                   "nested": {"a": [1, 2]}, "raw": "not json", "none": None}


def test_t7_sagemaker_keys_are_removed_from_the_users_set(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {
        "epochs": "1",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"/opt/ml/code"',
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": '"job-1"',
        "sagemaker_region": '"us-east-1"',
    })
    config = load_config(paths)
    assert config.user_hyperparameters == {"epochs": 1}
    assert config.entry_point == "train.py"
    assert config.submit_directory == "/opt/ml/code"
    assert config.job_name == "job-1"
    assert config.log_level == 20


def test_t3_resource_config_hosts_sorted_and_channels(tmp_path: Path) -> None:
    paths = write_config(
        tmp_path, {},
        resource={"current_host": "algo-2", "hosts": ["algo-2", "algo-1"],
                  "network_interface_name": "eth1"},
        data={"training": {"TrainingInputMode": "File"}, "testing": {"TrainingInputMode": "File"}},
    )
    config = load_config(paths)
    assert config.hosts == ["algo-1", "algo-2"]
    assert config.current_host == "algo-2"
    assert config.master_host == "algo-1"
    assert config.network_interface_name == "eth1"
    assert config.channels == ["testing", "training"]


def test_t3_current_host_must_be_among_hosts(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {}, resource={"current_host": "algo-9", "hosts": ["algo-1"]})
    with pytest.raises(ConfigError, match="algo-9"):
        load_config(paths)


def test_t2_malformed_hyperparameters_file_is_a_config_error(tmp_path: Path) -> None:
    paths = TrainingPaths(tmp_path)
    paths.input_config_dir.mkdir(parents=True)
    paths.hyperparameters_file.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(paths)


def test_decode_keeps_non_json_strings() -> None:
    assert decode_hyperparameter("gloo") == "gloo"
    assert decode_hyperparameter('"gloo"') == "gloo"
