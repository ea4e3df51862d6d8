"""SDK 3.x `ModelTrainer(training_mode=Mode.LOCAL_CONTAINER)` with the smlocal image (issue 12;
C12, C15, T11-T14): handlers/train.py on one and two hosts, offline, with the real SDK and Docker
engine; the variables and arguments the script sees; a failing script's error.

Every in-process step runs under a NetworkGuard: any connection or name lookup from this process
beyond loopback, the Docker socket and Docker's networks fails the test.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.sdk3.errors import Sdk3Error
from harness.sdk3.training import TrainResult, train
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.sdk(3), pytest.mark.docker]

# Two containers share this machine's cores: one thread each, one epoch of the small subset.
FAST = {"num-threads": 1, "patience": 0, "test-batch-size": 64}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class GuardedTrain:
    result: TrainResult | None
    error: Sdk3Error | None
    log: str  # what the SDK streamed from the containers
    guard: NetworkGuard
    root: Path


def run_train(root: Path, **kwargs: object) -> GuardedTrain:
    streamed = io.StringIO()
    result: TrainResult | None = None
    error: Sdk3Error | None = None
    with NetworkGuard() as guard, contextlib.redirect_stdout(streamed):
        try:
            result = train(root=root, **kwargs)  # type: ignore[arg-type]
        except Sdk3Error as exc:
            error = exc
        finally:
            print(streamed.getvalue()[-20000:], file=sys.stderr)  # shown when a test fails
    return GuardedTrain(result, error, ANSI.sub("", streamed.getvalue()), guard, root)


def checksums(log: str) -> dict[str, str]:
    return dict(re.findall(r"Parameter checksum \(rank (\d)\): (\w+)", log))


@pytest.fixture(scope="module")
def two_host_train(smlocal_image: str, small_cola_dir: Path, handlers_dir: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> GuardedTrain:
    return run_train(data_dir=small_cola_dir, code_dir=handlers_dir, image=smlocal_image,
                     instance_count=2, hyperparameters=FAST,
                     root=tmp_path_factory.mktemp("sdk3-train"))


def test_C12_sdk3_runs_its_driver_in_the_image_offline_and_cleans_up(
        two_host_train: GuardedTrain, nothing_left) -> None:
    two_host_train.guard.assert_offline()
    log = two_host_train.log
    # Its own entrypoint: bash runs sm_train.sh, which runs the entry script with python3.
    assert "Running Basic Script driver" in log
    assert re.search(r"Executing command: \S*python3 train\.py --epochs 1 --num_labels 2 "
                     r"--backend gloo", log), log[-3000:]
    assert "Initializing gloo process group: rank 1 of 2" in log
    nothing_left(two_host_train.root)


def test_C12_T12_two_hosts_train_one_model_in_sync(two_host_train: GuardedTrain) -> None:
    if two_host_train.error:
        raise two_host_train.error
    assert two_host_train.result is not None
    sums = checksums(two_host_train.log)
    fingerprints = dict(re.findall(r"Shard fingerprint \(rank (\d)\): (\w+)", two_host_train.log))
    assert sorted(sums) == ["0", "1"], two_host_train.log[-3000:]
    assert sums["0"] == sums["1"], "gradients were synchronised: the same weights"
    assert fingerprints["0"] != fingerprints["1"], "each rank trained on its own shard"
    with tarfile.open(two_host_train.result.model_data) as archive:
        names = set(archive.getnames())
    assert {"config.json", "model.safetensors"} <= {Path(n).name for n in names}


def test_C12_one_host_trains_and_leaves_a_model(smlocal_image: str, small_cola_dir: Path,
                                                handlers_dir: Path, tmp_path: Path,
                                                nothing_left) -> None:
    run = run_train(tmp_path, data_dir=small_cola_dir, code_dir=handlers_dir,
                    image=smlocal_image, hyperparameters={**FAST, "num-threads": 2})
    run.guard.assert_offline()
    nothing_left(tmp_path)
    if run.error:
        raise run.error
    assert run.result is not None
    assert sorted(checksums(run.log)) == ["0"]
    with tarfile.open(run.result.output_data) as archive:
        names = {Path(n).name for n in archive.getnames()}
    assert "metrics.json" in names


# What handlers/train.py reads from its environment (its argparse defaults and extra channels).
PROBE = '''\
import json, os, sys
names = ["SM_HOSTS", "SM_CURRENT_HOST", "SM_MODEL_DIR", "SM_CHANNEL_TRAINING",
         "SM_CHANNEL_TESTING", "SM_CHANNEL_VALIDATION", "SM_NUM_GPUS", "SM_OUTPUT_DATA_DIR",
         "SM_CHANNELS", "TRAINING_JOB_NAME"]
seen = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": {n: os.environ.get(n) for n in names}}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "probe.json"), "w") as handle:
    json.dump(seen, handle)
'''


def test_C12_T9_the_script_sees_the_2x_arguments_and_variables(
        smlocal_image: str, small_cola_dir: Path, handlers_dir: Path, tmp_path: Path,
        nothing_left) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(PROBE, encoding="utf-8")
    # The handlers' requirements, which 3.x installs only when named (already in the image:
    # pip needs no index, offline).
    shutil.copy2(handlers_dir / "requirements.txt", code / "requirements.txt")
    run = run_train(tmp_path / "jobs", data_dir=small_cola_dir, code_dir=code,
                    image=smlocal_image, hyperparameters={"lr": 5e-5, "bucket": True},
                    requirements="requirements.txt")
    run.guard.assert_offline()
    assert "Installing requirements" in run.log
    nothing_left(tmp_path)
    assert run.result is not None, run.error
    with tarfile.open(run.result.model_data) as archive:
        member = archive.extractfile("probe.json")
        assert member is not None
        seen = json.loads(member.read())
    # The 2.x toolkit's form (T10): `--name value`, values as JSON scalars.
    assert seen["argv"] == ["--epochs", "1", "--num_labels", "2", "--backend", "gloo",
                            "--lr", "5e-05", "--bucket", "true"]
    env = seen["env"]
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_MODEL_DIR"] == "/opt/ml/model"
    assert env["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    assert env["SM_NUM_GPUS"] == "0"
    for channel in ("training", "testing", "validation"):
        assert env[f"SM_CHANNEL_{channel.upper()}"] == f"/opt/ml/input/data/{channel}"
    assert env["TRAINING_JOB_NAME"].startswith("smlocal-sdk3")
    # Where 3.x differs from 2.x: its own two channels are listed beside the job's, and the
    # script runs from the `code` channel rather than /opt/ml/code.
    assert json.loads(env["SM_CHANNELS"]) == ["training", "testing", "validation", "code",
                                              "sm_drivers"]
    assert seen["cwd"] == "/opt/ml/input/data/code"


def test_T11_a_failing_script_fails_train_with_its_error(smlocal_image: str,
                                                         small_cola_dir: Path, tmp_path: Path,
                                                         nothing_left) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(
        'raise ValueError("smlocal-sdk3 deliberate failure: bad hyperparameter")\n',
        encoding="utf-8")
    run = run_train(tmp_path / "jobs", data_dir=small_cola_dir, code_dir=code,
                    image=smlocal_image)
    run.guard.assert_offline()
    nothing_left(tmp_path)
    assert run.result is None and run.error is not None
    assert run.error.exit_code == 1
    # The script's own error reaches the user in the streamed log; the exception carries the
    # job's failure file, which the 3.x driver writes (its own traceback, naming the command).
    assert "ValueError: smlocal-sdk3 deliberate failure: bad hyperparameter" in run.log
    assert "train.py" in str(run.error) and "exit status 1" in str(run.error)
