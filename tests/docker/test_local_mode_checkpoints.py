"""SDK local mode with the blog's own calls (issue 14 item 5, issue 11 item 5; L1-L7, T4):

- `fit()` with a checkpoint directory: the job checkpoints there, and a second job with the
  same directory resumes from it instead of training again;
- `estimator.deploy()` exactly as the blog calls it: it serves with the *training* entry point
  (SAGEMAKER_PROGRAM=train.py), which re-exports inference.py's handlers.

Every step under a NetworkGuard (offline), with the real SDK and Docker engine.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.local_mode.cleanup import remove_exited_containers, remove_network_if_unused
from harness.local_mode.training import FitResult, fit, read_metrics
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.sdk, pytest.mark.docker, pytest.mark.slow]

BLOG_SENTENCE = "Somebody just left - guess who."
FAST = {"num-threads": 2, "patience": 0, "test-batch-size": 64, "epochs": 1}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Fit:
    result: FitResult
    log: str


@dataclass(frozen=True)
class Fits:
    first: Fit
    second: Fit
    checkpoints: Path
    port: int


def guarded_fit(**kwargs: object) -> Fit:
    streamed = io.StringIO()
    with NetworkGuard() as guard, contextlib.redirect_stdout(streamed):
        try:
            result = fit(**kwargs)  # type: ignore[arg-type]
        finally:
            print(streamed.getvalue(), file=sys.stderr)  # shown when a test fails
    guard.assert_offline()
    return Fit(result, ANSI.sub("", streamed.getvalue()))


@pytest.fixture(scope="module")
def fits(smlocal_image: str, small_cola_dir: Path, tools: SimpleNamespace,
         tmp_path_factory: pytest.TempPathFactory) -> Fits:
    root = tmp_path_factory.mktemp("local-mode-checkpoints")
    checkpoints = root / "checkpoints"
    port = tools.free_port()
    runs = [guarded_fit(data_dir=small_cola_dir, code_dir=tools.handlers, image=smlocal_image,
                        hyperparameters=FAST, root=root, checkpoint_dir=checkpoints,
                        serving_port=port)
            for _ in range(2)]
    return Fits(runs[0], runs[1], checkpoints, port)


def test_t4_local_mode_fit_checkpoints_to_the_host_and_a_second_job_resumes(fits: Fits) -> None:
    first, second = fits.first.log, fits.second.log
    assert re.search(r"Checkpoint of epoch 1 saved to /opt/ml/input/data/checkpoints/", first)
    assert (fits.checkpoints / "checkpoint.pt").is_file()
    # The second job finds the first one's checkpoint (its last epoch) and trains nothing.
    resumed = re.findall(r"Resuming after epoch (\d+) from .* \(parameter checksum (\w+)\)",
                         second)
    saved = re.findall(r"Checkpoint of epoch 1 saved .* \(parameter checksum (\w+)\)", first)
    assert resumed == [("1", saved[0])]
    assert "Train Epoch:" not in second
    checksums = [re.findall(r"Parameter checksum \(rank 0\): (\w+)", log)
                 for log in (first, second)]
    assert checksums[0] and checksums[0] == checksums[1]
    metrics = [read_metrics(run.result.output_data) for run in (fits.first, fits.second)]
    assert metrics[0] is not None and metrics[1] is not None
    assert metrics[0]["final"] == metrics[1]["final"]
    # The checkpoint channel is where checkpoints go, not an evaluation set.
    assert set(metrics[1]["final"]) == {"testing", "validation"}


def serving_container(port: int) -> tuple[str, dict[str, str]]:
    """Name and environment of the container that publishes `port` (this test's endpoint)."""
    names = subprocess.run(["docker", "ps", "--filter", f"publish={port}", "--format",
                            "{{.Names}}"], capture_output=True, text=True, check=True).stdout
    assert len(names.split()) == 1, names
    inspected = subprocess.run(["docker", "inspect", names.split()[0]], capture_output=True,
                               text=True, check=True).stdout
    env = json.loads(inspected)[0]["Config"]["Env"]
    return names.split()[0], dict(item.split("=", 1) for item in env)


def test_l5_l7_the_blogs_estimator_deploy_serves_with_train_py(
        fits: Fits, tools: SimpleNamespace, tmp_path: Path) -> None:
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import JSONSerializer

    model_dir = tmp_path / "model"
    with tarfile.open(fits.second.result.model_data) as archive:
        archive.extractall(model_dir, filter="data")
    estimator = fits.second.result.estimator
    with NetworkGuard() as guard:
        # The blog's cells, with instance_type="local".
        predictor = estimator.deploy(initial_instance_count=1, instance_type="local")
        try:
            container, environment = serving_container(fits.port)
            predictor.serializer = JSONSerializer()
            predictor.deserializer = JSONDeserializer()
            result = predictor.predict(BLOG_SENTENCE)
            rows = predictor.predict(list(tools.sentences))
        finally:
            predictor.delete_endpoint()
            remove_exited_containers()
            remove_network_if_unused()
    guard.assert_offline()
    assert environment["SAGEMAKER_PROGRAM"] == "train.py"
    assert np.asarray(result).shape == (1, 2)
    print("blog sentence:", result, "class", np.argmax(result, axis=1), file=sys.stderr)
    np.testing.assert_allclose(rows, tools.eager_logits(model_dir, tools.sentences), atol=1e-4)
    left = subprocess.run(["docker", "ps", "--all", "--filter", f"name=^{container}$",
                           "--format", "{{.Names}}"], capture_output=True, text=True,
                          check=True).stdout
    assert left.strip() == "", "the endpoint's container is removed"
