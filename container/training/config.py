"""The job description SageMaker writes under `/opt/ml/input/config` (T2, T3, T7)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from container.training.paths import TrainingPaths

SAGEMAKER_PREFIX = "sagemaker_"


class ConfigError(Exception):
    """The job's configuration files are missing or malformed."""


def decode_hyperparameter(raw: str) -> Any:
    """T7: the SDK JSON-encodes every value; a value that is not JSON is kept as the raw string."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return raw


@dataclass(frozen=True)
class TrainingConfig:
    """The decoded configuration of one training job on one host."""

    # All hyperparameters, decoded (T7), including the SDK's `sagemaker_*` keys.
    all_hyperparameters: dict[str, Any]
    current_host: str
    hosts: list[str]
    network_interface_name: str
    resource_config: dict[str, Any]
    input_data_config: dict[str, Any]
    channels: list[str] = field(default_factory=list)

    @property
    def user_hyperparameters(self) -> dict[str, Any]:
        """T7: the user's own set, without the SDK's `sagemaker_*` keys."""
        return {
            key: value
            for key, value in self.all_hyperparameters.items()
            if not key.startswith(SAGEMAKER_PREFIX)
        }

    def sdk_value(self, name: str, default: Any = None) -> Any:
        return self.all_hyperparameters.get(f"{SAGEMAKER_PREFIX}{name}", default)

    @property
    def entry_point(self) -> str | None:
        program = self.sdk_value("program")
        return str(program) if program else None

    @property
    def submit_directory(self) -> str | None:
        directory = self.sdk_value("submit_directory")
        return str(directory) if directory else None

    @property
    def job_name(self) -> str:
        return str(self.sdk_value("job_name", "") or "")

    @property
    def log_level(self) -> int:
        level = self.sdk_value("container_log_level", 20)
        return int(level) if isinstance(level, int | str) and str(level).isdigit() else 20

    @property
    def current_instance_type(self) -> str:
        return str(self.resource_config.get("current_instance_type", "local"))

    @property
    def master_host(self) -> str:
        return self.hosts[0]


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc


def load_config(paths: TrainingPaths) -> TrainingConfig:
    """Read hyperparameters.json, resourceconfig.json and inputdataconfig.json (T2, T3).

    Missing files get the values of a single-host job, as on a fresh local run.
    """
    raw_hps = _read_json(paths.hyperparameters_file, {})
    if not isinstance(raw_hps, dict):
        raise ConfigError(f"{paths.hyperparameters_file} must hold a JSON object")
    hyperparameters = {
        str(key): decode_hyperparameter(value) if isinstance(value, str) else value
        for key, value in raw_hps.items()
    }
    resource = _read_json(paths.resource_config_file, {})
    if not isinstance(resource, dict):
        raise ConfigError(f"{paths.resource_config_file} must hold a JSON object")
    current_host = str(resource.get("current_host", "algo-1"))
    hosts = sorted(str(host) for host in resource.get("hosts", [current_host]))
    if current_host not in hosts:
        raise ConfigError(f"current_host {current_host!r} is not among hosts {hosts}")
    data_config = _read_json(paths.input_data_config_file, {})
    if not isinstance(data_config, dict):
        raise ConfigError(f"{paths.input_data_config_file} must hold a JSON object")
    return TrainingConfig(
        all_hyperparameters=hyperparameters,
        current_host=current_host,
        hosts=hosts,
        network_interface_name=str(resource.get("network_interface_name", "eth0")),
        resource_config=resource,
        input_data_config=data_config,
        channels=sorted(data_config),
    )
