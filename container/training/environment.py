"""The SM_* environment the user's script sees (T10, T13)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from container.training.config import TrainingConfig
from container.training.paths import TrainingPaths

# T13: the PyTorch toolkit's rendezvous port for every job.
MASTER_PORT = 7777


def env_value(value: Any) -> str:
    """T10: strings as-is, None as "", anything else as compact JSON with sorted keys."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def count_gpus() -> int:
    """The toolkit counts GPUs with `nvidia-smi --list-gpus`; no nvidia-smi means none."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return 0
    result = subprocess.run(
        [nvidia_smi, "--list-gpus"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return 0
    return sum(1 for line in result.stdout.splitlines() if line.strip())


def module_name(entry_point: str) -> str:
    return entry_point[:-3] if entry_point.endswith(".py") else entry_point


def training_env(
    config: TrainingConfig,
    paths: TrainingPaths,
    entry_point: str,
    user_args: list[str],
    num_gpus: int,
) -> dict[str, Any]:
    """The job's facts, keyed as the toolkit's TrainingEnv names them (lower case, no SM_)."""
    hps = config.user_hyperparameters
    channel_dirs = {channel: str(paths.channel_dir(channel)) for channel in config.channels}
    return {
        "additional_framework_parameters": {
            key: value
            for key, value in config.all_hyperparameters.items()
            if key.startswith("sagemaker_") and key not in _SDK_KEYS
        },
        "channel_input_dirs": channel_dirs,
        "channels": config.channels,
        "current_host": config.current_host,
        "current_instance_type": config.current_instance_type,
        "framework_module": "container.training:main",
        "hosts": config.hosts,
        "hyperparameters": hps,
        "input_config_dir": str(paths.input_config_dir),
        "input_data_config": config.input_data_config,
        "input_dir": str(paths.input_dir),
        "is_master": config.current_host == config.master_host,
        "job_name": config.job_name,
        "log_level": config.log_level,
        "master_hostname": config.master_host,
        "model_dir": str(paths.model_dir),
        "module_dir": config.submit_directory or str(paths.code_dir),
        "module_name": module_name(entry_point),
        "network_interface_name": config.network_interface_name,
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": num_gpus,
        "output_data_dir": str(paths.output_data_dir),
        "output_dir": str(paths.output_dir),
        "output_intermediate_dir": str(paths.output_intermediate_dir),
        "resource_config": config.resource_config,
        "user_entry_point": entry_point,
        "user_args": user_args,
    }


_SDK_KEYS = {
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
}

# The TrainingEnv keys exported one by one as SM_<KEY> (the rest travel in SM_TRAINING_ENV).
_EXPORTED = (
    "channels",
    "current_host",
    "current_instance_type",
    "hosts",
    "input_config_dir",
    "input_data_config",
    "input_dir",
    "log_level",
    "model_dir",
    "module_dir",
    "module_name",
    "network_interface_name",
    "num_cpus",
    "num_gpus",
    "output_data_dir",
    "output_dir",
    "output_intermediate_dir",
    "resource_config",
    "user_args",
    "user_entry_point",
)


def script_environment(
    config: TrainingConfig,
    paths: TrainingPaths,
    entry_point: str,
    user_args: list[str],
    num_gpus: int,
) -> dict[str, str]:
    """The variables added to the script's environment (T10, T13)."""
    facts = training_env(config, paths, entry_point, user_args, num_gpus)
    env = {f"SM_{key.upper()}": env_value(facts[key]) for key in _EXPORTED}
    env["SM_HPS"] = env_value(facts["hyperparameters"])
    env["SM_FRAMEWORK_PARAMS"] = env_value(facts["additional_framework_parameters"])
    env["SM_TRAINING_ENV"] = env_value(facts)
    for channel, directory in facts["channel_input_dirs"].items():
        env[f"SM_CHANNEL_{channel.upper()}"] = directory
    for key, value in facts["hyperparameters"].items():
        env[f"SM_HP_{key.upper()}"] = env_value(value)
    env["TRAINING_JOB_NAME"] = config.job_name
    env["SAGEMAKER_JOB_NAME"] = config.job_name
    env["CURRENT_HOST"] = config.current_host
    # T13: set for every job; RANK and WORLD_SIZE are the script's to derive.
    env["MASTER_ADDR"] = config.master_host
    env["MASTER_PORT"] = str(MASTER_PORT)
    region = config.sdk_value("region")
    if region:
        env.setdefault("AWS_REGION", str(region))
    return env
