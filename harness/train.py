"""`smlocal train`: one training job in a local `/opt/ml` tree, exactly as SageMaker local mode
lays it out, run by the same runtime as the image's `train` -- no Docker, no SDK."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from container.training.paths import TrainingPaths
from harness.errors import CommandError

# CSV files of a prepared data directory and the channel each one feeds.
CHANNEL_FILES = {
    "training": "train.csv",
    "testing": "test.csv",
    "validation": "dev.csv",
    "ood": "ood.csv",
}
REQUIRED_CHANNELS = ("training", "testing")
FAILURE_LINE_CHARS = 300
# T6: SageMaker sends SIGKILL 120 s after SIGTERM; a local stop need not wait that long.
STOP_GRACE_S = 30.0


class TrainError(CommandError):
    """A job that could not be laid out (exit 2) or that failed (the runtime's exit code)."""


@dataclass(frozen=True)
class TrainResult:
    job_dir: Path
    model_dir: Path
    metrics_file: Path


def failure_line(text: str) -> str:
    """A failure file (T11) as one line, short enough for a terminal."""
    return " ".join(text.split())[:FAILURE_LINE_CHARS]


def sdk_value(value: str) -> Any:
    """A CLI value as a user would write it in the estimator's `hyperparameters`: numbers,
    booleans and JSON literals as such (`3` -> 3, `true` -> True), anything else a string."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def sdk_encode(value: str) -> str:
    """A CLI value as the SDK sends it to the container: JSON-encoded (`gloo` -> `"gloo"`)."""
    return json.dumps(sdk_value(value))


def lay_out_job(
    paths: TrainingPaths,
    data_dir: Path,
    code_dir: Path,
    entry_point: str,
    hyperparameters: dict[str, str],
    job_name: str,
) -> list[str]:
    """Write the config files and channels of a single-host job (T2-T4); return the channels."""
    missing = [
        CHANNEL_FILES[c] for c in REQUIRED_CHANNELS if not (data_dir / CHANNEL_FILES[c]).is_file()
    ]
    if missing:
        raise TrainError(
            f"{data_dir} lacks {', '.join(missing)} (run `smlocal data cola` first)", 2
        )
    if not (code_dir / entry_point).is_file():
        raise TrainError(f"entry point {code_dir / entry_point} not found", 2)
    channels = [c for c, name in CHANNEL_FILES.items() if (data_dir / name).is_file()]
    for channel in channels:
        target = paths.channel_dir(channel)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / CHANNEL_FILES[channel], target / CHANNEL_FILES[channel])
    config = paths.input_config_dir
    config.mkdir(parents=True, exist_ok=True)
    encoded = {key: sdk_encode(value) for key, value in hyperparameters.items()}
    encoded.update({
        "sagemaker_program": json.dumps(entry_point),
        "sagemaker_submit_directory": json.dumps(str(code_dir.resolve())),
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": json.dumps(job_name),
        "sagemaker_region": json.dumps("us-east-1"),
    })
    (config / "hyperparameters.json").write_text(json.dumps(encoded, indent=2))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    ))
    (config / "inputdataconfig.json").write_text(json.dumps({
        channel: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                  "RecordWrapperType": "None"}
        for channel in channels
    }))
    return channels


def link_checkpoints(paths: TrainingPaths, checkpoint_dir: Path) -> None:
    """The job's checkpoint directory is a link to `checkpoint_dir`: the script sees SageMaker's
    layout and needs no argument for it."""
    if checkpoint_dir.exists() and not checkpoint_dir.is_dir():
        raise TrainError(f"checkpoint directory {checkpoint_dir} is not a directory", 2)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    paths.checkpoints_dir.symlink_to(checkpoint_dir.resolve(), target_is_directory=True)


def run_stoppable(command: list[str], env: dict[str, str],
                  grace_s: float = STOP_GRACE_S) -> tuple[int, int | None]:
    """Run the training runtime to its end; return its exit code and the signal that stopped it.

    SIGINT (Ctrl-C) and SIGTERM stop the job as SageMaker's StopTrainingJob does (T6): SIGTERM to
    the runtime, which forwards it to the script; whatever is left after `grace_s` is killed.
    The runtime gets a process group of its own, so that nothing of it outlives this process,
    and so that Ctrl-C reaches it once, through here, rather than every process at once.
    """
    received: list[int] = []
    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, _frame: object) -> None:
        if not received:
            received.append(signum)
            for child in children:
                child.send_signal(signal.SIGTERM)

    # Before the child exists: a signal in between must not leave it running unseen.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        child = subprocess.Popen(command, env=env, process_group=0)
        children.append(child)
        if received:
            child.send_signal(signal.SIGTERM)
        deadline: float | None = None
        while (exit_code := child.poll()) is None:
            if received and deadline is None:
                deadline = time.monotonic() + grace_s
            if deadline is not None and time.monotonic() > deadline:
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)
        with contextlib.suppress(ProcessLookupError):
            # Anything the script started and left behind in its group.
            os.killpg(child.pid, signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code, received[0] if received else None


def run_process_training(
    data_dir: Path,
    code_dir: Path,
    entry_point: str,
    hyperparameters: dict[str, str],
    work_dir: Path | None = None,
    model_out: Path | None = None,
    checkpoint_dir: Path | None = None,
) -> TrainResult:
    """Lay out the job and run it; `checkpoint_dir` (kept across jobs) becomes the job's
    `/opt/ml/checkpoints`, so a job started again after a kill resumes from it, as SageMaker
    does with `checkpoint_s3_uri`."""
    job_name = f"smlocal-train-{time.strftime('%Y%m%d-%H%M%S')}"
    job_dir = work_dir or Path(".smlocal/jobs") / job_name
    if job_dir.exists() and any(job_dir.iterdir()):
        raise TrainError(f"{job_dir} is not empty; choose a new --work-dir", 2)
    paths = TrainingPaths(job_dir.resolve())
    lay_out_job(paths, data_dir, code_dir, entry_point, hyperparameters, job_name)
    if checkpoint_dir is not None:
        link_checkpoints(paths, checkpoint_dir)
    env = dict(os.environ, SAGEMAKER_BASE_DIR=str(paths.base))
    exit_code, stopped_by = run_stoppable([sys.executable, "-m", "container", "train"], env)
    if stopped_by is not None:
        name = signal.Signals(stopped_by).name
        resume = f"; checkpoints in {paths.checkpoints_dir}" if checkpoint_dir else ""
        raise TrainError(f"stopped by {name}: the job ended (exit {exit_code}){resume}",
                         128 + stopped_by)
    if exit_code != 0:
        reason = "unknown (no failure file)"
        if paths.failure_file.is_file():
            reason = failure_line(paths.failure_file.read_text())
        raise TrainError(f"training failed: {reason} (see {paths.failure_file})", exit_code)
    if model_out is not None:
        shutil.copytree(paths.model_dir, model_out, dirs_exist_ok=True)
    return TrainResult(
        job_dir=paths.base,
        model_dir=model_out or paths.model_dir,
        metrics_file=paths.output_data_dir / "metrics.json",
    )
