"""SageMaker SDK local mode against the smlocal image (issue 5; L1-L11, T11-T14): the blog's
fit -> deploy -> predict -> delete, on two hosts, offline, with the real SDK and Docker engine.

Every in-process step runs under a NetworkGuard: any connection or name lookup from this process
beyond loopback, the Docker socket and Docker's networks fails the test. (The CLI test's
subprocesses, and the docker clients the SDK runs, are outside its reach.)
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.local_mode.cleanup import NETWORK, containers_under, local_mode_containers
from harness.local_mode.endpoint import LOCAL_ACCELERATOR, deploy
from harness.local_mode.errors import LocalModeError
from harness.local_mode.training import FitResult, fit, read_failure, read_metrics
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.sdk, pytest.mark.docker]

BLOG_SENTENCE = "Somebody just left - guess who."
# Two containers share this machine's cores: one thread each, one epoch of the small subset.
FAST = {"num-threads": 1, "patience": 0, "test-batch-size": 64}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Statuses and shapes, true of any classifier: the small subset's one epoch learns little.
ANY_MODEL_CONTRACT = (
    Path(__file__).resolve().parents[1] / "harness" / "testing" / "cola_any_model.yaml"
)


@dataclass(frozen=True)
class GuardedFit:
    result: FitResult
    log: str  # what the SDK streamed from the containers
    guard: NetworkGuard


def assert_nothing_left() -> None:
    assert local_mode_containers(include_running=True) == []
    networks = subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert NETWORK not in networks


def run_fit(**kwargs: object) -> GuardedFit:
    streamed = io.StringIO()
    with NetworkGuard() as guard, contextlib.redirect_stdout(streamed):
        try:
            result = fit(**kwargs)  # type: ignore[arg-type]
        finally:
            print(streamed.getvalue(), file=sys.stderr)  # shown when a test fails
    return GuardedFit(result, ANSI.sub("", streamed.getvalue()), guard)


@pytest.fixture(scope="module")
def two_host_fit(smlocal_image: str, small_cola_dir: Path, tools: SimpleNamespace,
                 tmp_path_factory: pytest.TempPathFactory) -> GuardedFit:
    return run_fit(data_dir=small_cola_dir, code_dir=tools.handlers, image=smlocal_image,
                   instance_count=2, hyperparameters=FAST,
                   root=tmp_path_factory.mktemp("local-mode"))


def test_l1_l4_t12_t14_two_hosts_train_one_model_in_sync(two_host_fit: GuardedFit) -> None:
    two_host_fit.guard.assert_offline()
    log = two_host_fit.log
    checksums = dict(re.findall(r"Parameter checksum \(rank (\d)\): (\w+)", log))
    fingerprints = dict(re.findall(r"Shard fingerprint \(rank (\d)\): (\w+)", log))
    assert sorted(checksums) == ["0", "1"], log[-3000:]
    assert checksums["0"] == checksums["1"], "gradients were synchronised: the same weights"
    assert fingerprints["0"] != fingerprints["1"], "each rank trained on its own shard"
    assert log.count("Training on 256 sentences (128 on this host)") == 2
    metrics = read_metrics(two_host_fit.result.output_data)
    assert metrics is not None and metrics["world_size"] == 2
    assert metrics["parameter_checksum"] == checksums["0"]
    with tarfile.open(two_host_fit.result.model_data) as archive:
        names = set(archive.getnames())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert read_failure(two_host_fit.result.output_data) is None
    assert_nothing_left()  # fit removes its exited containers and the network (L4)


def test_l5_l7_deploy_predict_delete_offline(two_host_fit: GuardedFit, smlocal_image: str,
                                              tools: SimpleNamespace, tmp_path: Path) -> None:
    port = tools.free_port()
    trained = two_host_fit.result.model_data.read_bytes()
    with NetworkGuard() as guard:
        endpoint = deploy(two_host_fit.result.model_data, code_dir=tools.handlers,
                          image=smlocal_image, port=port, root=tmp_path / "endpoint")
        try:
            result = endpoint.predict(BLOG_SENTENCE)  # the blog's call
            rows = endpoint.predict(list(tools.sentences))
        finally:
            endpoint.delete()
    guard.assert_offline()
    assert any(a.target.endswith(f":{port}") for a in guard.allowed), "it went over loopback"
    # The SDK repacks a local model.tar.gz in place: deploy() gives it a copy.
    assert two_host_fit.result.model_data.read_bytes() == trained
    assert not endpoint.staging.exists()
    assert np.asarray(result).shape == (1, 2)
    assert np.argmax(result, axis=1).tolist() in ([0], [1])
    model_dir = tmp_path / "model"
    with tarfile.open(two_host_fit.result.model_data) as archive:
        archive.extractall(model_dir, filter="data")
    expected = tools.eager_logits(model_dir, tools.sentences)
    assert np.asarray(rows).shape == (len(tools.sentences), 2)
    np.testing.assert_allclose(rows, expected, atol=1e-4)
    assert_nothing_left()


def test_t11_a_failing_script_fails_fit_with_its_error(smlocal_image: str, small_cola_dir: Path,
                                                        tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(
        "import sys\n"
        "print('reading the training channel', flush=True)\n"
        "raise ValueError('CoLA row 7 has no label')\n"
    )
    job = "smlocal-failing-job"
    with pytest.raises(LocalModeError) as raised:
        run_fit(data_dir=small_cola_dir, code_dir=code, image=smlocal_image,
                root=tmp_path / "root", job_name=job)
    message = str(raised.value)
    assert f"training job {job} failed" in message
    assert "ExecuteUserScriptError" in message and "ExitCode 1" in message
    assert "ValueError: CoLA row 7 has no label" in message
    output = tmp_path / "root" / "jobs" / job / "artifacts" / "output.tar.gz"
    with tarfile.open(output) as archive:
        failure = archive.extractfile("failure")
        assert failure is not None
        text = failure.read().decode()
    assert text.startswith("ExecuteUserScriptError:\nExitCode 1\n")
    assert "ValueError: CoLA row 7 has no label" in text
    assert_nothing_left()


def test_s2_a_handler_that_cannot_load_fails_deploy_fast_with_its_error(
    two_host_fit: GuardedFit, smlocal_image: str, tools: SimpleNamespace, tmp_path: Path
) -> None:
    """Not the SDK's "Giving up, endpoint didn't launch correctly" after about 115 s (L6): the
    image reports the failed load (503 on /invocations) and deploy() stops there."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(
        "def model_fn(model_dir):\n"
        "    raise ValueError('no weights in ' + model_dir)\n"
    )
    with pytest.raises(LocalModeError) as raised:
        deploy(two_host_fit.result.model_data, code_dir=code, image=smlocal_image,
               port=tools.free_port(), root=tmp_path / "endpoint")
    assert str(raised.value) == "the model failed to load: ValueError: no weights in /opt/ml/model"
    assert_nothing_left()
    assert not any((tmp_path / "endpoint" / "models").iterdir()), "the staged copy is gone"


def test_l4_l5_cli_deploy_detached_predict_contract_down(
    two_host_fit: GuardedFit, smlocal_image: str, tools: SimpleNamespace, tmp_path: Path
) -> None:
    root, port = tmp_path / "root", tools.free_port()

    def smlocal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", "local-mode", *args,
                               "--root", str(root)], capture_output=True, text=True,
                              timeout=300, check=False)

    deployed = smlocal("deploy", "--detach", "--model-data", str(two_host_fit.result.model_data),
                       "--code", str(tools.handlers), "--image", smlocal_image,
                       "--port", str(port))
    try:
        assert deployed.returncode == 0, deployed.stderr[-2000:]
        assert f"ready at http://127.0.0.1:{port}" in deployed.stdout
        again = smlocal("deploy", "--detach", "--model-data",
                        str(two_host_fit.result.model_data), "--port", str(port))
        assert again.returncode == 2
        assert again.stderr.strip().endswith("run `smlocal local-mode down` first")
        predicted = smlocal("predict", BLOG_SENTENCE, "Ran the store boy quickly to.")
        assert predicted.returncode == 0, predicted.stderr[-2000:]
        lines = predicted.stdout.strip().splitlines()
        assert len(lines) == 2 and all(re.search(r"class: [01]$", line) for line in lines)
        # One contract suite, any target: the SDK-deployed endpoint keeps the serving contract.
        contract = subprocess.run(
            [sys.executable, "-m", "harness.cli", "contract", "--target",
             f"http://127.0.0.1:{port}", "--cases", str(ANY_MODEL_CONTRACT)],
            capture_output=True, text=True, timeout=300, check=False)
        assert contract.returncode == 0, contract.stdout[-3000:] + contract.stderr[-2000:]
        # This test's own endpoint (other local-mode users may share the engine).
        assert len(containers_under(root)) == 1
    finally:
        down = smlocal("down")
    assert down.returncode == 0, down.stderr
    assert "deleted" in down.stdout
    assert_nothing_left()
    gone = smlocal("predict", BLOG_SENTENCE, "--port", str(port))
    assert gone.returncode == 1
    assert gone.stderr.count("\n") == 1 and f"no endpoint answers on port {port}" in gone.stderr


@pytest.mark.slow
def test_s28_sdk_serves_the_traced_archive_with_the_local_accelerator(
    torchscript_archive: Path, bert_model_dir: Path, smlocal_image: str,
    tools: SimpleNamespace, tmp_path: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    """Issue 6: deploy(accelerator_type="local_sagemaker_notebook") sets the EI flag; the
    handler sees it, finds no EI build of torch, serves on the CPU: logits = eager's."""
    with NetworkGuard() as guard:
        endpoint = deploy(torchscript_archive, code_dir=tools.handlers,
                          entry_point="inference_torchscript.py", image=smlocal_image,
                          port=tools.free_port(), accelerator_type=LOCAL_ACCELERATOR,
                          root=tmp_path / "endpoint")
        try:
            rows = endpoint.predict(list(tools.sentences))
        finally:
            endpoint.delete()
    guard.assert_offline()
    np.testing.assert_allclose(rows, tools.eager_logits(bert_model_dir, tools.sentences),
                               atol=1e-4)
    streamed = capfd.readouterr().out
    assert "SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT=true" in streamed
    assert "takes no target device" in streamed
    assert_nothing_left()
