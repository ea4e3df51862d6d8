"""The `train` command end to end, as a subprocess on a real /opt/ml tree (T1, T4, T5, T9, T11).

SAGEMAKER_BASE_DIR moves /opt/ml to a temporary directory (T1), which is how `train` runs
without a container.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

RECORDING_SCRIPT = """
import json, os, sys
from pathlib import Path
record = {"argv": sys.argv[1:], "cwd": os.getcwd(),
          "env": {k: v for k, v in os.environ.items()
                  if k.startswith(("SM_", "MASTER_", "TRAINING_JOB", "CURRENT_HOST"))}}
Path(os.environ["SM_MODEL_DIR"], "record.json").write_text(json.dumps(record))
"""


def test_t5_success_writes_an_empty_success_file_and_exits_0(job) -> None:
    job.write_script(RECORDING_SCRIPT)
    job.configure({"epochs": 1})
    result = job.run()
    assert result.returncode == 0, result.stderr
    assert job.paths.success_file.read_text() == ""
    assert not job.paths.failure_file.exists()


def test_t8_t11_script_gets_sorted_cli_args_and_runs_in_the_code_dir(job) -> None:
    job.write_script(RECORDING_SCRIPT)
    job.configure({"epochs": 1, "num_labels": 2, "backend": "gloo"})
    assert job.run().returncode == 0
    record = json.loads((job.paths.model_dir / "record.json").read_text())
    assert record["argv"] == ["--backend", "gloo", "--epochs", "1", "--num_labels", "2"]
    assert Path(record["cwd"]) == job.paths.code_dir


def test_t10_script_sees_the_sm_environment(job) -> None:
    job.write_script(RECORDING_SCRIPT)
    job.configure({"epochs": 1})
    assert job.run().returncode == 0
    env = json.loads((job.paths.model_dir / "record.json").read_text())["env"]
    assert env["SM_MODEL_DIR"] == str(job.paths.model_dir)
    assert env["SM_CHANNEL_TRAINING"] == str(job.paths.channel_dir("training"))
    assert env["SM_HP_EPOCHS"] == "1"
    assert env["SM_USER_ARGS"] == '["--epochs","1"]'
    assert env["TRAINING_JOB_NAME"] == "smlocal-test-job"
    assert env["MASTER_PORT"] == "7777"


def test_t4_output_layout_is_created(job) -> None:
    job.write_script("import os; open(os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'x'), 'w')")
    job.configure({})
    assert job.run().returncode == 0
    assert job.paths.model_dir.is_dir()
    assert (job.paths.output_data_dir / "x").is_file()
    assert job.paths.checkpoints_dir.is_dir()


def test_t11_failing_script_writes_the_toolkits_failure_text_and_exits_1(job) -> None:
    job.write_script("""
        import sys
        print("about to fail", file=sys.stderr)
        def load():
            raise ValueError("no such column: sentence")
        load()
    """)
    job.configure({"epochs": 1})
    result = job.run()
    assert result.returncode == 1
    failure = job.paths.failure_file.read_text()
    assert failure == (
        "ExecuteUserScriptError:\n"
        "ExitCode 1\n"
        'ErrorMessage "ValueError: no such column: sentence"\n'
        f'Command "{sys.executable} train.py --epochs 1"'
    )
    assert not job.paths.success_file.exists()
    # The script's own stderr still reaches the job's log.
    assert "about to fail" in result.stderr


def test_t11_exit_without_traceback_reports_the_last_lines(job) -> None:
    job.write_script("import sys; print('disk full', file=sys.stderr); sys.exit(3)")
    job.configure({})
    assert job.run().returncode == 1
    failure = job.paths.failure_file.read_text()
    assert failure.startswith('ExecuteUserScriptError:\nExitCode 3\nErrorMessage "disk full"\n')


def test_t11_killed_by_sigkill_adds_an_out_of_memory_note(job) -> None:
    job.write_script("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    job.configure({})
    assert job.run().returncode == 1
    failure = job.paths.failure_file.read_text()
    assert "ExitCode 137" in failure
    assert "OutOfMemoryError" in failure


def test_t5_failure_reason_is_replaced_on_the_next_successful_run(job) -> None:
    job.write_script("raise SystemExit(1)")
    job.configure({})
    assert job.run().returncode == 1
    # T9: the code is now in /opt/ml/code, which is reused as it is.
    (job.paths.code_dir / "train.py").write_text("print('fixed')")
    assert job.run().returncode == 0
    assert job.paths.success_file.exists() and not job.paths.failure_file.exists()


def test_t11_missing_entry_point_is_a_framework_error(job) -> None:
    job.write_script("print('hi')")
    job.configure({}, entry_point="missing.py")
    assert job.run().returncode == 1
    failure = job.paths.failure_file.read_text()
    assert failure.startswith("Framework Error: \n")
    assert "entry point missing.py not found" in failure


def test_t9_code_from_a_tarball(job, tmp_path: Path) -> None:
    job.write_script(RECORDING_SCRIPT)
    tarball = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(job.source_dir / "train.py", arcname="train.py")
    job.configure({"epochs": 1}, submit_directory=f"file://{tarball}")
    assert job.run().returncode == 0
    assert (job.paths.code_dir / "train.py").is_file()


def test_t9_code_already_in_place_is_used_as_is(job) -> None:
    # SageMaker local mode with local_code mounts the source dir at /opt/ml/code.
    job.paths.code_dir.mkdir(parents=True)
    (job.paths.code_dir / "train.py").write_text(RECORDING_SCRIPT)
    job.configure({}, submit_directory="/opt/ml/code")
    assert job.run().returncode == 0


def test_t9_failed_requirements_install_fails_the_job(job) -> None:
    job.write_script(RECORDING_SCRIPT)
    (job.source_dir / "requirements.txt").write_text("this is not a requirement !!\n")
    job.configure({})
    assert job.run().returncode == 1
    failure = job.paths.failure_file.read_text()
    assert failure.startswith("InstallRequirementsError:\nExitCode ")
    assert "-m pip install" in failure
    assert not (job.paths.model_dir / "record.json").exists()


def _probe_wheel(directory: Path) -> Path:
    """A minimal real wheel, so the install needs no index."""
    directory.mkdir()
    wheel = directory / "smlocal_probe-1.0-py3-none-any.whl"
    info = "smlocal_probe-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("smlocal_probe/__init__.py", "VALUE = 42\n")
        archive.writestr(f"{info}/METADATA",
                         "Metadata-Version: 2.1\nName: smlocal-probe\nVersion: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def test_t9_requirements_are_installed_before_the_script_runs(job, tmp_path: Path) -> None:
    # A throwaway interpreter, so the project's own environment is left untouched.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _probe_wheel(job.source_dir / "wheels")
    (job.source_dir / "requirements.txt").write_text(
        "--no-index\n--find-links wheels\nsmlocal-probe==1.0\n"
    )
    job.write_script("""
        import os, smlocal_probe
        open(os.path.join(os.environ["SM_MODEL_DIR"], "probe"), "w").write(str(smlocal_probe.VALUE))
    """)
    job.configure({})
    result = job.run({"SMLOCAL_PYTHON": str(venv / "bin" / "python")})
    assert result.returncode == 0, result.stderr
    assert (job.paths.model_dir / "probe").read_text() == "42"


@pytest.mark.parametrize("bad", ["{", '"just a string"'])
def test_t2_unreadable_hyperparameters_fail_with_a_framework_error(job, bad: str) -> None:
    job.write_script("print('never')")
    job.configure({})
    job.paths.hyperparameters_file.write_text(bad)
    assert job.run().returncode == 1
    assert job.paths.failure_file.read_text().startswith("Framework Error: \n")


def test_t6_sigterm_to_train_reaches_the_script(job) -> None:
    """SageMaker stops a job with SIGTERM (SIGKILL 120 s later): the runtime forwards it, so the
    script can save a checkpoint and exit."""
    import os
    import signal
    import time

    job.write_script("""
        import os, signal, sys, time
        from pathlib import Path
        out = Path(os.environ["SM_OUTPUT_DATA_DIR"])
        def stop(signum, frame):
            (out / "stopped").write_text("checkpoint saved")
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        (out / "started").write_text("")
        time.sleep(60)
    """)
    job.configure({})
    env = dict(os.environ, SAGEMAKER_BASE_DIR=str(job.paths.base), PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "container", "train"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = job.paths.output_data_dir / "started"
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "the script never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert (job.paths.output_data_dir / "stopped").read_text() == "checkpoint saved"
