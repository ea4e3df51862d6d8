"""`train`: run one SageMaker training job on this host (T1-T13)."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

from container.training.arguments import to_cli_args
from container.training.code import install_requirements, prepare_code
from container.training.config import ConfigError, TrainingConfig, load_config
from container.training.environment import count_gpus, script_environment
from container.training.hosts import wait_for_hosts
from container.training.paths import TrainingPaths
from container.training.process import ProcessError, run_command
from container.training.settings import TrainingSettings

log = logging.getLogger("smlocal.train")

# T5: only the first 1024 characters become the job's FailureReason; the file keeps it all.
FAILURE_REASON_CHARS = 1024


def script_command(python: str, entry_point: str, args: list[str]) -> list[str]:
    if entry_point.endswith(".py"):
        return [python, entry_point, *args]
    if entry_point.endswith(".sh"):
        return ["/bin/sh", entry_point, *args]
    return [f"./{entry_point}", *args]


def _prepare_layout(paths: TrainingPaths) -> None:
    for directory in (paths.model_dir, paths.output_data_dir, paths.checkpoints_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for marker in (paths.success_file, paths.failure_file):
        marker.unlink(missing_ok=True)


def run_job(settings: TrainingSettings, config: TrainingConfig) -> None:
    """Everything between reading the config and the script's exit; raises on failure."""
    paths = settings.paths
    entry_point = config.entry_point
    if not entry_point:
        raise ConfigError("hyperparameter sagemaker_program (the entry point) is not set")
    prepare_code(config.submit_directory, paths.code_dir, settings.s3)
    if not (paths.code_dir / entry_point).is_file():
        raise ConfigError(f"entry point {entry_point} not found in {paths.code_dir}")
    install_requirements(settings.python, paths.code_dir)
    wait_for_hosts(config.hosts, settings.host_resolution_timeout_s)
    user_args = to_cli_args(config.user_hyperparameters)
    env = dict(os.environ)
    env.update(script_environment(config, paths, entry_point, user_args, count_gpus()))
    # The script imports its own modules first, as `python train.py` in /opt/ml/code does.
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(paths.code_dir), env.get("PYTHONPATH", "")) if part
    )
    command = script_command(settings.python, entry_point, user_args)
    log.info("host %s of %s: running %s", config.current_host, config.hosts, " ".join(command))
    run_command(command, cwd=paths.code_dir, env=env, error_name="ExecuteUserScriptError")


def _write_failure(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """T5: exit 0 and write `success`, or exit 1 and write the reason to `failure`."""
    del argv  # `train` takes no arguments (T1); the job is described by /opt/ml/input/config.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    settings = TrainingSettings.from_environ()
    paths = settings.paths
    try:
        _prepare_layout(paths)
        config = load_config(paths)
        logging.getLogger().setLevel(config.log_level)
        run_job(settings, config)
    except ProcessError as exc:
        log.error("training failed:\n%s", exc)
        _write_failure(paths.failure_file, str(exc))
        return 1
    except Exception:
        reason = "Framework Error: \n" + traceback.format_exc()
        log.error("%s", reason)
        _write_failure(paths.failure_file, reason)
        return 1
    paths.success_file.write_text("", encoding="utf-8")
    log.info("training completed; model in %s", paths.model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
