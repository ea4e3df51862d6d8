"""`handlers/train.py` survives being killed (issue 14, T4, T6): a checkpoint at the end of each
epoch in SageMaker's checkpoint directory, written atomically, and a restarted job that resumes
after the last completed epoch and ends exactly where an uninterrupted job ends.

Real processes, real SIGKILLs, the real model on a small CoLA subset.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"

pytestmark = pytest.mark.slow

# Three short epochs; a high rate so that validation MCC moves between epochs (with this seed:
# 0.0, 0.115, 0.104, so epoch 2 is kept), and patience 0 so that every epoch runs and the kept
# one comes from the best-so-far state.
ARGS = ["--epochs", "3", "--batch-size", "16", "--lr", "3e-4", "--patience", "0",
        "--log-interval", "1", "--num-threads", "2", "--seed", "7"]
CHECKPOINT_LINE = re.compile(r"Checkpoint of epoch (\d+) saved to .* \(parameter checksum (\w+)\)")
RESUME_LINE = re.compile(r"Resuming after epoch (\d+) from .* \(parameter checksum (\w+)\)")
FINAL_LINE = re.compile(r"Parameter checksum \(rank 0\): (\w+)")
# Wall-clock figures differ between any two runs; everything else must be equal.
TIMINGS = {"seconds", "samples_per_s", "train_seconds", "train_samples_per_s", "wall_seconds"}


@dataclass
class Job:
    base: Path  # the job's /opt/ml

    @property
    def checkpoints(self) -> Path:
        return self.base / "checkpoints"

    def environment(self, data: Path) -> dict[str, str]:
        return dict(os.environ, HF_HUB_OFFLINE="1",
                    SM_MODEL_DIR=str(self.base / "model"),
                    SM_OUTPUT_DATA_DIR=str(self.base / "output" / "data"),
                    SM_CHANNEL_TRAINING=str(data), SM_CHANNEL_TESTING=str(data),
                    SM_CHANNEL_VALIDATION=str(data),
                    SM_CHANNELS='["testing","training","validation"]')

    def start(self, data: Path) -> subprocess.Popen[str]:
        # As the toolkit runs it: `python train.py ARGS` in the code directory.
        return subprocess.Popen([sys.executable, "train.py", *ARGS], cwd=HANDLERS,
                                env=self.environment(data), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def run(self, data: Path) -> str:
        process = self.start(data)
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, out[-3000:]
        return out

    def metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = json.loads(
            (self.base / "output" / "data" / "metrics.json").read_text())
        return metrics


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def kill_when(process: subprocess.Popen[str], pattern: re.Pattern[str]) -> str:
    """Read the job's output until a line matches, then SIGKILL it (no handler can run)."""
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if pattern.search(line):
            process.send_signal(signal.SIGKILL)
            break
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    return "".join(seen) + rest


@dataclass(frozen=True)
class Runs:
    uninterrupted: str
    killed: str
    killed_again: str
    resumed: str
    reference: Job
    interrupted: Job


@pytest.fixture(scope="module")
def runs(small_cola_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    reference = Job(tmp_path_factory.mktemp("uninterrupted"))
    uninterrupted = reference.run(small_cola_dir)
    interrupted = Job(tmp_path_factory.mktemp("interrupted"))
    # Killed in the middle of epoch 3 (its fourth step), after two checkpoints: the kept model
    # may be an earlier epoch's, so the resumed job needs the best-so-far state too.
    killed = kill_when(interrupted.start(small_cola_dir),
                       re.compile(r"Train Epoch: 3 \[48/"))
    # Started again, and killed once more after its last epoch's checkpoint, while it scores the
    # kept model: the checkpoint then carries the best epoch's weights beside the last one's.
    killed_again = kill_when(interrupted.start(small_cola_dir),
                             re.compile(r"Evaluating the saved model"))
    resumed = interrupted.run(small_cola_dir)
    summary = {
        "uninterrupted": {"checkpoints": CHECKPOINT_LINE.findall(uninterrupted),
                          "final": FINAL_LINE.findall(uninterrupted),
                          "kept_epoch": reference.metrics()["kept_epoch"],
                          "final_scores": reference.metrics()["final"]},
        "killed": {"checkpoints": CHECKPOINT_LINE.findall(killed)},
        "killed_again": {"resumed": RESUME_LINE.findall(killed_again),
                         "checkpoints": CHECKPOINT_LINE.findall(killed_again)},
        "resumed": {"resumed": RESUME_LINE.findall(resumed),
                    "checkpoints": CHECKPOINT_LINE.findall(resumed),
                    "final": FINAL_LINE.findall(resumed),
                    "kept_epoch": interrupted.metrics()["kept_epoch"]},
        "validation_mcc": [e["validation"]["mcc"] for e in reference.metrics()["epochs"]],
    }
    print("resume proof:", json.dumps(summary), file=sys.stderr)
    return Runs(uninterrupted, killed, killed_again, resumed, reference, interrupted)


def test_t4_every_epoch_leaves_a_checkpoint_in_the_checkpoint_directory(runs: Runs) -> None:
    assert [epoch for epoch, _ in CHECKPOINT_LINE.findall(runs.uninterrupted)] == ["1", "2", "3"]
    assert (runs.reference.checkpoints / "checkpoint.pt").is_file()
    # Nothing but the checkpoint itself: no temporary file survives a write.
    assert [p.name for p in runs.reference.checkpoints.iterdir()] == ["checkpoint.pt"]


def test_t6_a_job_killed_mid_epoch_resumes_after_its_last_completed_epoch(runs: Runs) -> None:
    killed = CHECKPOINT_LINE.findall(runs.killed)
    assert [epoch for epoch, _ in killed] == ["1", "2"]
    assert "Parameter checksum" not in runs.killed
    # It continues from the killed job's last checkpoint: the same weights, no epoch lost...
    assert RESUME_LINE.findall(runs.killed_again) == [("2", killed[-1][1])]
    # ... and trains only what was left.
    assert "Train Epoch: 1 " not in runs.killed_again
    assert "Train Epoch: 2 " not in runs.killed_again
    last = CHECKPOINT_LINE.findall(runs.killed_again)
    assert [epoch for epoch, _ in last] == ["3"]
    # Killed again after it, the job trains nothing more: it only scores the kept model.
    assert RESUME_LINE.findall(runs.resumed) == [("3", last[0][1])]
    assert "Train Epoch:" not in runs.resumed
    assert CHECKPOINT_LINE.findall(runs.resumed) == []


def test_t6_the_resumed_job_ends_exactly_as_the_uninterrupted_one(runs: Runs) -> None:
    reference = dict(CHECKPOINT_LINE.findall(runs.uninterrupted))
    # Every epoch's weights agree: the killed job's two, the restarted job's last.
    for epoch, checksum in [*CHECKPOINT_LINE.findall(runs.killed),
                            *CHECKPOINT_LINE.findall(runs.killed_again)]:
        assert checksum == reference[epoch], f"epoch {epoch}"
    assert FINAL_LINE.findall(runs.resumed) == FINAL_LINE.findall(runs.uninterrupted)
    expected, got = runs.reference.metrics(), runs.interrupted.metrics()
    assert got["kept_epoch"] == expected["kept_epoch"] == 2
    # The kept model is epoch 2's, restored from the checkpoint's best-so-far weights.
    assert got["parameter_checksum"] == reference["2"]
    assert got["parameter_checksum"] == expected["parameter_checksum"]
    # Losses, per-epoch validation and the final scores: equal, not merely close.
    assert without_timings(got["epochs"]) == without_timings(expected["epochs"])
    assert got["final"] == expected["final"]
    assert (runs.interrupted.base / "model" / "model.safetensors").read_bytes() == (
        runs.reference.base / "model" / "model.safetensors").read_bytes()


def test_a_checkpoint_of_another_job_is_refused_not_resumed(runs: Runs, small_cola_dir: Path,
                                                            tmp_path: Path) -> None:
    job = Job(tmp_path)
    job.checkpoints.mkdir(parents=True)
    (job.checkpoints / "checkpoint.pt").write_bytes(
        (runs.reference.checkpoints / "checkpoint.pt").read_bytes())
    result = subprocess.run([sys.executable, "train.py", *ARGS, "--lr", "1e-5"], cwd=HANDLERS,
                            env=job.environment(small_cola_dir), capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 1
    assert "belongs to a job with other settings (lr)" in result.stderr


# --- atomic writes: SIGKILL while a checkpoint is being written ----------------------------

WRITER = """
import sys, torch
sys.path.insert(0, sys.argv[2])
import train
payload = torch.zeros(8_000_000)  # 32 MB: each write takes a while
version = 0
while True:
    version += 1
    payload.fill_(version)
    train.save_checkpoint(sys.argv[1], {"version": version, "payload": payload})
    print(version, flush=True)
"""


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    processes: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(HANDLERS)],
                                   stdout=subprocess.PIPE, text=True,
                                   env=dict(os.environ, HF_HUB_OFFLINE="1"))
        processes.append(process)
        return process

    yield tmp_path, start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_t6_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint_whole(
        writer: tuple[Path, Any]) -> None:
    import torch

    directory, start = writer
    kills = 0
    for delay in (0.05, 0.13, 0.21, 0.34, 0.55):
        process = start()
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "1"  # one complete checkpoint exists
        time.sleep(delay)  # then kill it wherever it is: mostly inside torch.save
        process.kill()
        process.wait()
        kills += 1
        state = torch.load(directory / "checkpoint.pt", weights_only=True)
        version = state["version"]
        assert version >= 1
        assert bool((state["payload"] == version).all()), "a torn checkpoint"
    assert kills == 5
    # Killed writers leave their partial files (never read: only a rename publishes one); the
    # next job removes them before it looks for a checkpoint.
    left = {p.name for p in directory.iterdir()} - {"checkpoint.pt"}
    assert all(name.endswith(".partial") for name in left)
    sys.path.insert(0, str(HANDLERS))
    try:
        import train  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(HANDLERS))
    train.remove_partial_checkpoints(str(directory))
    assert [p.name for p in directory.iterdir()] == ["checkpoint.pt"]
