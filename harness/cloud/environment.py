"""`smlocal cloud env`: the environment that points cloud code at the server, unchanged (C1, C2).

botocore reads endpoints from `AWS_ENDPOINT_URL` and its per-service forms (C1). STS is the
exception: both SDKs call `https://sts.<region>.amazonaws.com` to name their default bucket,
which offline fails; a SageMaker config file naming the default bucket avoids that call, and
opting out of telemetry avoids the others (C2, L8). The file is written next to the state and
found through SAGEMAKER_USER_CONFIG_OVERRIDE.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from harness.cloud.clients import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, Clients
from harness.cloud.settings import ACCOUNT_ID

# The per-service variables botocore knows for what cloud code calls (C1); AWS_ENDPOINT_URL
# covers the rest.
SERVICE_VARIABLES = ("SAGEMAKER", "SAGEMAKER_RUNTIME", "S3", "STS", "IAM", "CLOUDWATCH_LOGS")


def default_bucket(region: str) -> str:
    """The name the SDK would derive from the account (C2), so code that prints it reads the
    same as in the cloud."""
    return f"sagemaker-{region}-{ACCOUNT_ID}"


def sdk_config_text(bucket: str) -> str:
    return (
        "# Written by smlocal cloud: the SageMaker SDK's settings for the local server.\n"
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  PythonSDK:\n"
        "    Modules:\n"
        "      TelemetryOptOut: true\n"
        "      Session:\n"
        f"        DefaultS3Bucket: {bucket}\n"
    )


def write_sdk_config(path: Path, clients: Clients | None = None) -> str:
    """The config file, and (given the server's clients) its default bucket created."""
    region = clients.region if clients else "us-east-1"
    bucket = default_bucket(region)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sdk_config_text(bucket))
    if clients is not None:
        s3: Any = clients.s3()
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    return bucket


def environment(url: str, region: str, sdk_config: Path) -> dict[str, str]:
    env = {"AWS_ENDPOINT_URL": url}
    env.update({f"AWS_ENDPOINT_URL_{name}": url for name in SERVICE_VARIABLES})
    env.update({
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
        # No instance-metadata lookups for credentials or region.
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(sdk_config),
    })
    return env


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
