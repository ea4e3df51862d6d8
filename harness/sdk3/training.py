"""`ModelTrainer(training_mode=Mode.LOCAL_CONTAINER)` with the smlocal image (C12, C15).

3.x does not run the image's `train`: it mounts two channels of its own, `code` (the source dir,
loose files) and `sm_drivers` (its driver scripts), and runs `/bin/bash -c .../sm_train.sh` as
the container's entrypoint. That script writes the SM_* variables from the same config files the
image's `train` reads (hosts `algo-<i>`, channels at /opt/ml/input/data/<name>), cds into
/opt/ml/input/data/code and runs `python3 <entry_script> --<name> <value>...` for each
hyperparameter. So the image only needs bash, python3 and pip3 on PATH, which it has.

One compose project per job: its file sits in the job's own directory (`local_container_root`),
whose name is unique, so every container of the job is found by compose's working-dir label and
removed after, win or lose; the `sagemaker-local` network too when nothing else uses it.
"""

from __future__ import annotations

import tarfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.image import DEFAULT_TAG
from harness.local_mode.cleanup import remove_interrupted
from harness.local_mode.training import BLOG_HYPERPARAMETERS, lay_out_channels
from harness.sdk3.errors import Sdk3Error
from harness.sdk3.offline import prepare_process

# The instance type local mode writes to resourceconfig.json; `local_gpu` would ask compose for
# GPUs.
LOCAL_INSTANCE_TYPE = "local_cpu"
JOB_PREFIX = "smlocal-sdk3"
# Where 3.x leaves the artifacts of a job, under its local_container_root.
COMPRESSED_ARTIFACTS = "compressed_artifacts"


FAILURE_MEMBER = "failure"
FAILURE_LINE_CHARS = 300


def read_failure(output_data: Path) -> str | None:
    """The last line of the failure file (T11) in output.tar.gz. The 3.x driver writes its own
    traceback there, ending in the command that failed and its exit status; the script's own
    error is in the job's log above it."""
    if not output_data.is_file():
        return None
    with tarfile.open(output_data) as archive:
        for member in archive.getmembers():
            if member.isfile() and Path(member.name) == Path(FAILURE_MEMBER):
                handle = archive.extractfile(member)
                if handle is not None:
                    lines = handle.read().decode("utf-8", "replace").strip().splitlines()
                    return lines[-1][-FAILURE_LINE_CHARS:] if lines else None
    return None


@dataclass(frozen=True)
class TrainResult:
    job_root: Path  # the job's local_container_root: compose file and artifacts
    model_data: Path  # model.tar.gz: every host's /opt/ml/model, merged
    output_data: Path  # output.tar.gz: every host's /opt/ml/output (metrics.json, failure)
    instance_count: int
    wall_s: float
    trainer: Any  # the sagemaker.train.ModelTrainer


def new_job_root(root: Path) -> Path:
    """A fresh directory whose name (the compose project) is unique to this job."""
    job_root = root / f"{JOB_PREFIX}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    job_root.mkdir(parents=True)
    return job_root.resolve()


def train(
    data_dir: Path,
    *,
    code_dir: Path = Path("handlers"),
    entry_script: str = "train.py",
    requirements: str | None = None,
    image: str = DEFAULT_TAG,
    instance_count: int = 1,
    hyperparameters: Mapping[str, Any] | None = None,
    root: Path = Path(".smlocal") / "sdk3",
) -> TrainResult:
    """Train with 3.x's ModelTrainer in local containers: the blog's hyperparameters, updated with
    `hyperparameters`, `training`/`testing`/`validation` channels from a prepared data directory.
    `requirements` (a file in `code_dir`) is what 3.x pip-installs before the script; unlike
    2.x's toolkit (T9) it installs none unless asked. Raises Sdk3Error (exit 1) with the job's
    failure when the script fails."""
    prepare_process(root)
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, SourceCode
    from sagemaker.train.model_trainer import Mode

    job_root = new_job_root(root)
    channels = lay_out_channels(data_dir, job_root.parent / f"{job_root.name}-channels")
    trainer = ModelTrainer(
        training_image=image,
        source_code=SourceCode(source_dir=str(code_dir.resolve()), entry_script=entry_script,
                               requirements=requirements),
        training_mode=Mode.LOCAL_CONTAINER,
        compute=Compute(instance_type=LOCAL_INSTANCE_TYPE, instance_count=instance_count),
        hyperparameters={**BLOG_HYPERPARAMETERS, **(hyperparameters or {})},
        local_container_root=str(job_root),
        base_job_name=JOB_PREFIX,
    )
    inputs = [InputData(channel_name=name, data_source=str(path.resolve()))
              for name, path in channels.items()]
    artifacts = job_root / COMPRESSED_ARTIFACTS
    started = time.perf_counter()
    try:
        trainer.train(input_data_config=inputs, wait=True, logs=True)
    except RuntimeError as exc:
        # The compose run's exit code; the cause is the job's failure file (the 3.x driver's
        # traceback) and, above it in the log, the script's own.
        failure = read_failure(artifacts / "output.tar.gz")
        raise Sdk3Error(f"training job {job_root.name} failed: {failure or exc}", 1) from exc
    finally:
        remove_interrupted(job_root)
    return TrainResult(job_root=job_root, model_data=artifacts / "model.tar.gz",
                       output_data=artifacts / "output.tar.gz", instance_count=instance_count,
                       wall_s=time.perf_counter() - started, trainer=trainer)
