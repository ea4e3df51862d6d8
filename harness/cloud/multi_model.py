"""Multi-model endpoints (`PrimaryContainer.Mode: MultiModel`), as SageMaker runs them.

The model's `ModelDataUrl` is an S3 prefix; the container starts with no model
(`SAGEMAKER_MULTI_MODEL=true`). InvokeEndpoint's `TargetModel` is a key under that prefix: on
its first use on an instance the platform downloads `<prefix><TargetModel>`, unpacks it into
`/opt/ml/models/<id>/model` (by the engine: put_archive, no bind mount), and asks the
container to load it (`POST /models`); the invocation then goes to `/invocations` with
`X-Amzn-SageMaker-Target-Model: <id>`. A container that answers 404 for a model it was told to
load (it unloaded it, or restarted) gets it loaded again, and the invocation is retried once.

Errors as SageMaker's runtime gives them (botocore's sagemaker-runtime model: ValidationError
is HTTP 400, ModelError 424): a TargetModel on a single-model endpoint, a multi-model endpoint
invoked without one, and a TargetModel with no object under the prefix are ValidationErrors;
a model the container cannot load is a ModelError with the container's answer.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cloud.clients import split_s3_uri

MODE = "MultiModel"
MODELS_DIR = "/opt/ml/models"
ENVIRONMENT = {"SAGEMAKER_MULTI_MODEL": "true"}


class TargetError(Exception):
    """InvokeEndpoint cannot reach the target model: the error SageMaker answers."""

    def __init__(self, code: str, status: int, message: str,
                 **fields: object) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.fields = fields


def is_multi_model(primary: dict[str, Any]) -> bool:
    return primary.get("Mode") == MODE


def container_model_name(target: str) -> str:
    """A stable name for a target in the container: TargetModel is a relative S3 key, which
    may hold characters a URL path segment should not."""
    return hashlib.sha256(target.encode()).hexdigest()[:32]


def target_uri(prefix: str, target: str) -> str:
    return f"{prefix.rstrip('/')}/{target.lstrip('/')}"


def directory_entries(*names: str) -> bytes:
    """A tar of empty directories (mode 755), for put_archive to create them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
    return buffer.getvalue()


@dataclass
class LoadedTargets:
    """The targets one container was asked to load (TargetModel -> its name there)."""

    names: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def missing_target(uri: str) -> TargetError:
    bucket, key = split_s3_uri(uri)
    return TargetError(
        "ValidationError", 400,
        f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that "
        "there is an object located at the URL and that the role passed to CreateModel has "
        "permissions to download the model.")


def download_target(s3: Any, uri: str, scratch: Path) -> Path:
    """`uri` into a fresh directory under `scratch`; the archive's path (the caller removes
    its parent). Missing object: the ValidationError SageMaker answers."""
    import botocore.exceptions

    staging = scratch / f"target-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True, exist_ok=True)
    archive = staging / "model.tar.gz"
    bucket, key = split_s3_uri(uri)
    try:
        s3.download_file(bucket, key, str(archive))
    except botocore.exceptions.ClientError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
            raise missing_target(uri) from exc
        raise
    return archive
