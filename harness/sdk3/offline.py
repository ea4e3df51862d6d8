"""An offline SDK 3.x process: nothing the SDK does may leave the machine.

3.x reads the same sources as 2.x (local-mode.md L8) plus two of its own: `ModelBuilder` checks
the serving role with IAM SimulatePrincipalPolicy even in LOCAL_CONTAINER mode (C11;
`SAGEMAKER_VALIDATE_ROLE=false` skips it), and `sagemaker.serve` builds a SageMaker client when
it is imported (C15), so all of this is set before the first SDK import.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from harness.local_mode.session import (
    DUMMY_ACCESS_KEY,
    DUMMY_SECRET_KEY,
    REGION,
    ROLE,
    SDK_CONFIG,
)

__all__ = ["OFFLINE_BUCKET", "ROLE", "offline_environment", "prepare_process"]

# Named in the SDK config (C2), so the SDK never asks STS for the account to name one; in local
# modes nothing is uploaded to it.
OFFLINE_BUCKET = "smlocal-offline"
CONFIG_FILE = "sagemaker-sdk3-config.yaml"


def offline_environment(config_dir: Path) -> dict[str, str]:
    """The variables of an offline 3.x process; writes the SDK config file they name."""
    config = {
        "SchemaVersion": SDK_CONFIG["SchemaVersion"],
        "SageMaker": {"PythonSDK": {"Modules": {
            **SDK_CONFIG["SageMaker"]["PythonSDK"]["Modules"],
            "Session": {"DefaultS3Bucket": OFFLINE_BUCKET},
        }}},
    }
    config_dir.mkdir(parents=True, exist_ok=True)
    config_file = config_dir / CONFIG_FILE
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    return {
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config_file.resolve()),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "HF_HUB_OFFLINE": "1",
    }


def prepare_process(config_dir: Path) -> None:
    """Set the offline environment in this process, before the SDK is imported; values the user
    set already win, except the SDK config file (smlocal's, so telemetry stays off)."""
    environment = offline_environment(config_dir)
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = environment.pop("SAGEMAKER_USER_CONFIG_OVERRIDE")
    for name, value in environment.items():
        os.environ.setdefault(name, value)
