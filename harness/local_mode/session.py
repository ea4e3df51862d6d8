"""An offline `LocalSession`: nothing it does may leave the machine (L8-L11).

The SDK reads its settings from AWS's credential chain, config files and telemetry defaults.
Each is replaced here by an explicit value, so that a run never depends on (or reaches) the
user's AWS account: dummy credentials and a region on the boto session (no STS, no instance
metadata), telemetry opted out in the session's own SDK config (no HTTPS call per fit, L8), and
the local-mode config that keeps every artifact under one root directory (L11).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

# L10: required by the SDK, never checked in local mode.
ROLE = "arn:aws:iam::111111111111:role/local"
# L9: with local code nothing is uploaded, but without a code location deploy() looks up a
# default bucket through STS and S3.
CODE_LOCATION = "s3://offline/code"
# L9: deploy() needs both even with an image_uri; they only label the model here.
FRAMEWORK_VERSION = "2.13"
PY_VERSION = "py311"
REGION = "us-east-1"
# The containers receive these as AWS credentials (L2): well-formed, useless, and they stop
# botocore from asking the instance metadata service for real ones.
DUMMY_ACCESS_KEY = "AKIASMLOCALOFFLINE00"
DUMMY_SECRET_KEY = "smlocal-offline-not-a-secret"
# L8: the SDK's own config, given to the session instead of read from the user's files.
SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
# L8: read by botocore and the SDK when they start; set before either is imported.
OFFLINE_ENVIRONMENT = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    "AWS_DEFAULT_REGION": REGION,
}

QUIET_LOGGERS = ("sagemaker.config", "sagemaker.local.utils")


def prepare_process() -> None:
    """Set the offline environment defaults for this process (a user's own values win), and
    quiet two SDK loggers that speak on every import or call: that it ignores the user's config
    files (by design here) and that Docker runs rootful (it falls back to localhost)."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)


def offline_session(root: Path, serving_port: int | None = None) -> Any:
    """A `sagemaker.local.LocalSession` whose containers, compose files and artifacts all live
    under `root` (L11), with local code (the source dir is mounted, never uploaded), and whose
    endpoints listen on `serving_port` (the SDK's default: 8080)."""
    prepare_process()
    import boto3
    from sagemaker.local import LocalSession

    root.mkdir(parents=True, exist_ok=True)
    boto_session = boto3.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
        region_name=REGION,
    )
    session = LocalSession(boto_session=boto_session, sagemaker_config=copy.deepcopy(SDK_CONFIG))
    local: dict[str, Any] = {"local_code": True, "container_root": str(root.resolve())}
    if serving_port is not None:
        local["serving_port"] = serving_port
    # The setter also points the session's runtime client (predict) at the port.
    session.config = {"local": local}
    return session
