"""`fit()` through the SageMaker SDK in local mode, as the blog runs it, on one host or several.

The SDK starts one container per host with `docker-compose up --abort-on-container-exit` (L1),
mounts each `file://` channel at `/opt/ml/input/data/<channel>` (L2) and, win or lose, tars the
hosts' `/opt/ml/model` and `/opt/ml/output` into model.tar.gz and output.tar.gz (L4). What it
reports on failure is the compose exit code; the cause is in the failure file (T11), so a failed
job raises with that file's message.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.image import DEFAULT_TAG
from harness.local_mode.cleanup import (
    remove_exited_containers,
    remove_interrupted,
    remove_network_if_unused,
)
from harness.local_mode.errors import LocalModeError
from harness.local_mode.session import (
    CODE_LOCATION,
    FRAMEWORK_VERSION,
    PY_VERSION,
    ROLE,
    offline_session,
)
from harness.local_mode.signals import interruptible
from harness.train import CHANNEL_FILES, REQUIRED_CHANNELS, failure_line

DEFAULT_ROOT = Path(".smlocal") / "local-mode"
# The blog's hyperparameters (its estimator), which the caller's override or extend.
BLOG_HYPERPARAMETERS: dict[str, Any] = {"epochs": 1, "num_labels": 2, "backend": "gloo"}
# SDK 2.x refuses checkpoint_s3_uri and checkpoint_local_path in local mode ("not supported in
# local mode"), and each container's /opt/ml/checkpoints dies with it. A `file://` channel is a
# writable mount of a host directory shared by every host, so the checkpoint directory is given
# as one, and the script is told where it is (train.py's --checkpoint-dir).
CHECKPOINT_CHANNEL = "checkpoints"
CHECKPOINT_HYPERPARAMETER = "checkpoint-dir"
CONTAINER_CHANNELS = "/opt/ml/input/data"
FAILURE_MEMBER = "failure"
METRICS_MEMBER = "data/metrics.json"


@dataclass(frozen=True)
class FitResult:
    job_name: str
    model_data: Path  # model.tar.gz: rank 0's /opt/ml/model
    output_data: Path  # output.tar.gz: every host's /opt/ml/output (metrics.json, failure)
    instance_count: int
    wall_s: float
    estimator: Any  # sagemaker.pytorch.PyTorch, ready for deploy()


def new_job_name(prefix: str = "smlocal") -> str:
    """Unique per call (32 random bits beside the second) and a valid SageMaker name."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def lay_out_channels(data_dir: Path, target: Path) -> dict[str, Path]:
    """One directory per channel (what a `file://` channel mounts), holding that channel's CSV
    from a prepared data directory; `training` and `testing` are required."""
    missing = [
        CHANNEL_FILES[c] for c in REQUIRED_CHANNELS if not (data_dir / CHANNEL_FILES[c]).is_file()
    ]
    if missing:
        raise LocalModeError(
            f"{data_dir} lacks {', '.join(missing)} (run `smlocal data cola` first)", 2
        )
    channels: dict[str, Path] = {}
    for channel, name in CHANNEL_FILES.items():
        if (data_dir / name).is_file():
            channels[channel] = target / channel
            channels[channel].mkdir(parents=True, exist_ok=True)
            shutil.copy2(data_dir / name, channels[channel] / name)
    return channels


def _read_member(output_data: Path, path: str) -> str | None:
    """A text file of output.tar.gz (the union of every host's /opt/ml/output), if present."""
    if not output_data.is_file():
        return None
    with tarfile.open(output_data) as archive:
        for member in archive.getmembers():
            if member.isfile() and Path(member.name) == Path(path):
                handle = archive.extractfile(member)
                if handle is not None:
                    return handle.read().decode("utf-8", "replace")
    return None


def read_failure(output_data: Path) -> str | None:
    """The failure file (T11) in output.tar.gz, as one line; None when there is none."""
    text = _read_member(output_data, FAILURE_MEMBER)
    return None if text is None else failure_line(text)


def read_metrics(output_data: Path) -> dict[str, Any] | None:
    """The metrics.json train.py writes to SM_OUTPUT_DATA_DIR, from output.tar.gz."""
    text = _read_member(output_data, METRICS_MEMBER)
    if text is None:
        return None
    metrics: dict[str, Any] = json.loads(text)
    return metrics


def fit(
    data_dir: Path,
    *,
    code_dir: Path = Path("handlers"),
    entry_point: str = "train.py",
    image: str = DEFAULT_TAG,
    instance_count: int = 1,
    hyperparameters: Mapping[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
    root: Path = DEFAULT_ROOT,
    job_name: str | None = None,
    checkpoint_dir: Path | None = None,
    serving_port: int | None = None,
) -> FitResult:
    """Train with `sagemaker.pytorch.PyTorch(...).fit()` in local mode on `instance_count`
    containers of `image`; raise LocalModeError with the script's error if the job fails.

    `checkpoint_dir` (a host directory kept across jobs) is where the script checkpoints and
    what a job started again resumes from: the local stand-in for `checkpoint_s3_uri`.
    `serving_port` is where the returned estimator's `deploy()` serves (the SDK's default 8080)."""
    if instance_count < 1:
        raise LocalModeError(f"instance count must be at least 1, not {instance_count}", 2)
    if not (code_dir / entry_point).is_file():
        raise LocalModeError(f"entry point {code_dir / entry_point} not found", 2)
    job_name = job_name or new_job_name()
    job_root = (root / "jobs" / job_name).resolve()
    channels = lay_out_channels(data_dir, job_root / "channels")
    hyperparameters = {**BLOG_HYPERPARAMETERS, **(hyperparameters or {})}
    if checkpoint_dir is not None:
        if checkpoint_dir.exists() and not checkpoint_dir.is_dir():
            raise LocalModeError(f"checkpoint directory {checkpoint_dir} is not a directory", 2)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        channels[CHECKPOINT_CHANNEL] = checkpoint_dir.resolve()
        hyperparameters[CHECKPOINT_HYPERPARAMETER] = f"{CONTAINER_CHANNELS}/{CHECKPOINT_CHANNEL}"
    # The SDK's per-run directory (compose file, each host's /opt/ml, a copy of the model) goes
    # here, and is removed once the artifacts are safe in model.tar.gz and output.tar.gz.
    containers_dir = job_root / "containers"
    session = offline_session(containers_dir, serving_port=serving_port)

    from sagemaker.pytorch import PyTorch

    estimator = PyTorch(
        entry_point=entry_point,
        source_dir=str(code_dir.resolve()),
        image_uri=image,
        role=ROLE,
        framework_version=FRAMEWORK_VERSION,
        py_version=PY_VERSION,
        instance_type="local",
        instance_count=instance_count,
        hyperparameters=hyperparameters,
        environment=dict(environment or {}),
        output_path=f"file://{job_root / 'artifacts'}",
        code_location=CODE_LOCATION,
        sagemaker_session=session,
    )
    inputs = {channel: f"file://{directory}" for channel, directory in channels.items()}
    output_data = job_root / "artifacts" / "output.tar.gz"
    started = time.perf_counter()
    try:
        with interruptible() as interruption:
            estimator.fit(inputs, job_name=job_name)
        if interruption.signum is not None:  # swallowed by the SDK (see signals.py)
            raise KeyboardInterrupt(f"stopped by {interruption.name}")
    except Exception as exc:  # the SDK raises RuntimeError, ValueError, docker errors ...
        reason = read_failure(output_data) or f"{type(exc).__name__}: {exc}"
        raise LocalModeError(f"training job {job_name} failed: {reason}") from exc
    finally:
        # On every way out, Ctrl-C and SIGTERM included: this job's containers (running or
        # not) and compose, then what the SDK leaves after any job (L4).
        remove_interrupted(containers_dir)
        remove_exited_containers()
        remove_network_if_unused()
    shutil.rmtree(containers_dir, ignore_errors=True)
    # Empty, not gone: the estimator's session keeps it as container_root, and its deploy()
    # makes the endpoint's directory there.
    containers_dir.mkdir(parents=True, exist_ok=True)
    return FitResult(
        job_name=job_name,
        model_data=job_root / "artifacts" / "model.tar.gz",
        output_data=output_data,
        instance_count=instance_count,
        wall_s=time.perf_counter() - started,
        estimator=estimator,
    )
