"""`smlocal train`: the job tree it lays out and how it reports failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


def write_data(directory: Path, with_dev: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.csv").write_text("label,sentence\n1,Good.\n")
    (directory / "test.csv").write_text("label,sentence\n0,Bad bad.\n")
    if with_dev:
        (directory / "dev.csv").write_text("label,sentence\n1,Fine.\n")
    return directory


RECORDER = """
import json, os, sys
from pathlib import Path
Path(os.environ["SM_MODEL_DIR"], "argv.json").write_text(json.dumps(sys.argv[1:]))
Path(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json").write_text("{}")
"""


def test_lays_out_the_job_like_sdk_local_mode(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = write_data(tmp_path / "data")
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(RECORDER)
    job = tmp_path / "job"
    exit_code = main(["train", "--data", str(data), "--code", str(code), "--work-dir", str(job),
                      "-H", "epochs=3", "-H", "backend=gloo", "-H", "lr=2e-5"])
    assert exit_code == 0
    out = capsys.readouterr().out
    assert f"model:   {job.resolve() / 'model'}" in out
    config = job / "input" / "config"
    hyperparameters = json.loads((config / "hyperparameters.json").read_text())
    # T2: every value JSON-encoded as the SDK does.
    assert hyperparameters["epochs"] == "3"
    assert hyperparameters["backend"] == '"gloo"'
    assert hyperparameters["sagemaker_program"] == '"train.py"'
    assert json.loads((config / "resourceconfig.json").read_text())["hosts"] == ["algo-1"]
    assert sorted(json.loads((config / "inputdataconfig.json").read_text())) == [
        "testing", "training", "validation"]
    assert (job / "input" / "data" / "validation" / "dev.csv").is_file()
    argv = json.loads((job / "model" / "argv.json").read_text())
    assert argv == ["--backend", "gloo", "--epochs", "3", "--lr", "2e-05"]
    assert (job / "output" / "success").is_file()


def test_missing_data_exits_2_with_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = main(["train", "--data", str(tmp_path / "nothing"),
                      "--work-dir", str(tmp_path / "job")])
    assert exit_code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "lacks train.csv, test.csv" in err and "smlocal data cola" in err


def test_failing_script_exits_1_with_the_failure_reason(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = write_data(tmp_path / "data", with_dev=False)
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("raise RuntimeError('out of patience')\n")
    exit_code = main(["train", "--data", str(data), "--code", str(code),
                      "--work-dir", str(tmp_path / "job")])
    assert exit_code == 1
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("smlocal train: error: training failed: ExecuteUserScriptError:")
    assert "RuntimeError: out of patience" in last_line


def test_non_empty_work_dir_is_refused(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "keep.txt").write_text("precious")
    assert main(["train", "--data", str(write_data(tmp_path / "d")),
                 "--work-dir", str(job)]) == 2
    assert (job / "keep.txt").read_text() == "precious"
    assert "not empty" in capsys.readouterr().err


CHECKPOINTER = """
import os
from pathlib import Path
checkpoints = Path(os.environ["SM_MODEL_DIR"]).parent / "checkpoints"
seen = sorted(p.name for p in checkpoints.iterdir())
(checkpoints / f"epoch-{len(seen) + 1}").write_text(",".join(seen))
Path(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json").write_text("{}")
"""


def test_t4_checkpoint_dir_is_the_jobs_checkpoints_and_outlives_it(tmp_path: Path) -> None:
    """`--checkpoint-dir` is the job's /opt/ml/checkpoints: a second job sees the first one's
    files there, as a SageMaker job with the same checkpoint_s3_uri does."""
    data = write_data(tmp_path / "data")
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(CHECKPOINTER)
    checkpoints = tmp_path / "kept" / "checkpoints"
    for job in ("first", "second"):
        assert main(["train", "--data", str(data), "--code", str(code), "--work-dir",
                     str(tmp_path / job), "--checkpoint-dir", str(checkpoints)]) == 0
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-1", "epoch-2"]
    assert (checkpoints / "epoch-2").read_text() == "epoch-1"


def test_a_checkpoint_dir_that_is_a_file_exits_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert main(["train", "--data", str(write_data(tmp_path / "d")), "--work-dir",
                 str(tmp_path / "job"), "--checkpoint-dir", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a directory" in err
