"""harness.local_mode.training without Docker: channels, the failure and metrics readers, and
the arguments refused before any container starts. (fit() itself: tests/docker.)"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from harness.local_mode.errors import LocalModeError
from harness.local_mode.training import (
    fit,
    lay_out_channels,
    new_job_name,
    read_failure,
    read_metrics,
)


def write_tar(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_channels_get_one_directory_each(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.csv", "test.csv", "dev.csv", "notes.txt"):
        (data / name).write_text("label,sentence\n1,Hi.\n")
    channels = lay_out_channels(data, tmp_path / "channels")
    assert sorted(channels) == ["testing", "training", "validation"]
    assert [p.name for p in channels["training"].iterdir()] == ["train.csv"]
    assert [p.name for p in channels["validation"].iterdir()] == ["dev.csv"]


def test_training_and_testing_are_required(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("label,sentence\n")
    with pytest.raises(LocalModeError, match=r"lacks test\.csv") as raised:
        lay_out_channels(tmp_path, tmp_path / "channels")
    assert raised.value.exit_code == 2


def test_the_failure_file_is_read_as_one_line(tmp_path: Path) -> None:
    failure = ('ExecuteUserScriptError:\nExitCode 1\nErrorMessage "ValueError: bad csv"\n'
               'Command "/opt/venv/bin/python3 train.py"\n')
    archive = write_tar(tmp_path / "output.tar.gz", {"failure": failure, "data/x.txt": "x"})
    assert read_failure(archive) == ('ExecuteUserScriptError: ExitCode 1 ErrorMessage '
                                     '"ValueError: bad csv" Command "/opt/venv/bin/python3 '
                                     'train.py"')
    assert read_metrics(archive) is None


def test_metrics_and_no_failure(tmp_path: Path) -> None:
    metrics = {"world_size": 2, "final": {"testing": {"accuracy": 0.75, "mcc": 0.3}}}
    archive = write_tar(tmp_path / "output.tar.gz",
                        {"success": "", "data/metrics.json": json.dumps(metrics)})
    assert read_failure(archive) is None
    assert read_metrics(archive) == metrics
    assert read_failure(tmp_path / "missing.tar.gz") is None


def test_fit_refuses_bad_arguments_before_starting_anything(tmp_path: Path) -> None:
    with pytest.raises(LocalModeError, match="at least 1") as raised:
        fit(tmp_path, instance_count=0, root=tmp_path)
    assert raised.value.exit_code == 2
    with pytest.raises(LocalModeError, match=r"entry point .*nope\.py not found"):
        fit(tmp_path, entry_point="nope.py", root=tmp_path)
    with pytest.raises(LocalModeError, match=r"lacks train\.csv, test\.csv"):
        fit(tmp_path, root=tmp_path / "root")


def test_job_names_are_unique_and_valid() -> None:
    names = {new_job_name() for _ in range(50)}
    assert len(names) == 50
    # SageMaker job names: up to 63 characters, alphanumerics and hyphens.
    assert all(len(n) <= 63 and n.replace("-", "").isalnum() for n in names)
