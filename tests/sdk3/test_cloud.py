"""SDK 3.x cloud code against `smlocal cloud` (issue 12 with issue 11; C11-C14, C18): a
`ModelTrainer` in its default mode (a SageMaker training job) with an AWS PyTorch training image
URI, a failing script's reason, and `ModelBuilder` build -> deploy -> `Endpoint.invoke` with an
AWS PyTorch inference image URI, with nothing but `smlocal cloud env` in the environment.

The server runs as users run it (`smlocal cloud up --detach`, its own process); the SDK calls run
in this process under a NetworkGuard.
"""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cloud import docker_engine
from harness.cloud.settings import instance_id
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.sdk(3), pytest.mark.docker]

BLOG_SENTENCE = "Somebody just left - guess who."
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"
TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311"
INFERENCE_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"
HYPERPARAMETERS = {"epochs": 1, "num_labels": 2, "backend": "gloo", "num-threads": 2,
                   "patience": 0, "test-batch-size": 64}


def smlocal(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cloud:
    state_dir: Path
    env: dict[str, str]
    bucket: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session(region_name=self.env["AWS_DEFAULT_REGION"]).client(service)

    def upload(self, local: Path, key: str) -> str:
        self.client("s3").upload_file(str(local), self.bucket, key)
        return f"s3://{self.bucket}/{key}"


@pytest.fixture(scope="module")
def cloud(smlocal_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """`smlocal cloud up --detach`, and this process's environment from `smlocal cloud env`
    (what `eval "$(smlocal cloud env)"` does to a shell), set before the SDK is imported."""
    state_dir = tmp_path_factory.mktemp("sdk3-cloud") / "state"
    up = smlocal("cloud", "up", "--detach", "--port", str(free_port()), "--state-dir",
                 str(state_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        printed = smlocal("cloud", "env", "--state-dir", str(state_dir))
        assert printed.returncode == 0, printed.stderr
        env = dict(line.removeprefix("export ").split("=", 1)
                   for line in printed.stdout.splitlines())
        config = Path(env["SAGEMAKER_USER_CONFIG_OVERRIDE"]).read_text()
        bucket = re.search(r"DefaultS3Bucket: (\S+)", config)
        assert bucket is not None
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            # The local flows switch the role check off in this process (harness.sdk3.offline);
            # against the cloud it runs, as in AWS (C11).
            patch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
            yield Cloud(state_dir, env, bucket.group(1))
    finally:
        print((state_dir / "server.log").read_text(errors="replace")[-5000:], file=sys.stderr)
        down = smlocal("cloud", "down", "--state-dir", str(state_dir))
        assert down.returncode == 0, down.stdout + down.stderr
    assert docker_engine.our_containers(instance_id(state_dir)) == [], "down leaves no container"
    assert docker_engine.our_networks(instance_id(state_dir)) == [], "down leaves no network"


def model_trainer(code_dir: Path, hyperparameters: dict[str, Any]) -> Any:
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, SourceCode

    return ModelTrainer(training_image=TRAINING_IMAGE,
                        source_code=SourceCode(source_dir=str(code_dir), entry_script="train.py"),
                        compute=Compute(instance_type="ml.m5.xlarge", instance_count=1),
                        hyperparameters=hyperparameters, role=ROLE, base_job_name="smlocal-sdk3")


def channels(cloud: Cloud, data_dir: Path) -> list[Any]:
    from sagemaker.train.configs import InputData

    files = {"training": "train.csv", "testing": "test.csv", "validation": "dev.csv"}
    return [InputData(channel_name=name,
                      data_source=cloud.upload(data_dir / file, f"sdk3/{name}/{file}")
                      .rsplit("/", 1)[0])
            for name, file in files.items()]


def job_log(cloud: Cloud, job_name: str) -> str:
    logs = cloud.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    lines = []
    for stream in logs.describe_log_streams(logGroupName=group,
                                            logStreamNamePrefix=f"{job_name}/")["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
        lines += [event["message"] for event in events["events"]]
    return "\n".join(lines)


def test_C11_C12_C18_model_trainer_runs_a_training_job_with_the_aws_image_uri(
        cloud: Cloud, small_cola_dir: Path, handlers_dir: Path) -> None:
    with NetworkGuard() as guard:
        trainer = model_trainer(handlers_dir, HYPERPARAMETERS)
        inputs = channels(cloud, small_cola_dir)
        try:
            trainer.train(input_data_config=inputs, wait=True, logs=True)
        finally:
            job = getattr(trainer, "_latest_training_job", None)
            if job is not None:
                print(job_log(cloud, job.training_job_name)[-5000:], file=sys.stderr)
    guard.assert_offline()
    job = trainer._latest_training_job
    described = cloud.client("sagemaker").describe_training_job(
        TrainingJobName=job.training_job_name)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["AlgorithmSpecification"]["ContainerEntrypoint"] == ["/bin/bash"]
    log = job_log(cloud, job.training_job_name)
    assert re.search(r"Parameter checksum \(rank 0\): \w+", log), log[-3000:]
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact.endswith("/output/model.tar.gz")


def test_C6_C12_a_failing_script_fails_the_job_with_its_reason(cloud: Cloud,
                                                               small_cola_dir: Path,
                                                               tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(
        'raise ValueError("smlocal-sdk3 deliberate failure in the cloud")\n', encoding="utf-8")
    with NetworkGuard() as guard:
        trainer = model_trainer(code, {"epochs": 1})
        with pytest.raises(Exception, match="Failed") as raised:
            trainer.train(input_data_config=channels(cloud, small_cola_dir), wait=True,
                          logs=False)
    guard.assert_offline()
    job_name = trainer._latest_training_job.training_job_name
    described = cloud.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    assert described["TrainingJobStatus"] == "Failed"
    # The reason is the job's failure file: 3.x's driver writes its own traceback, naming the
    # command; the script's error is in the job's log (C16).
    assert "train.py" in described["FailureReason"], described["FailureReason"]
    assert "train.py" in str(raised.value)
    assert "ValueError: smlocal-sdk3 deliberate failure in the cloud" in job_log(cloud, job_name)


def test_C13_C14_model_builder_deploys_and_invokes_with_the_aws_image_uri(
        cloud: Cloud, bert_model_dir: Path, handlers_dir: Path, tmp_path: Path,
        eager_logits) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(bert_model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    with NetworkGuard() as guard:
        from sagemaker.serve import ModelBuilder
        from sagemaker.train.configs import SourceCode

        model_data = cloud.upload(archive, "sdk3/model/model.tar.gz")
        builder = ModelBuilder(
            model_path=model_data,
            # 3.x repacks the code into the artifact at s3_model_data_url, which build() would
            # otherwise default to a fresh, empty prefix (model_builder_utils.py
            # `_get_serve_setting`): without it the repack's HeadObject is a 404, in AWS too.
            s3_model_data_url=model_data,
            image_uri=INFERENCE_IMAGE,
            source_code=SourceCode(source_dir=str(handlers_dir), entry_script="inference.py"),
            role_arn=ROLE, instance_type="ml.m5.xlarge")
        builder.build()
        endpoint = builder.deploy(endpoint_name="smlocal-sdk3-cloud", initial_instance_count=1,
                                  instance_type="ml.m5.xlarge")
        try:
            output = endpoint.invoke(body=json.dumps([BLOG_SENTENCE]),
                                     content_type="application/json", accept="application/json")
            body = output.body.read() if hasattr(output.body, "read") else output.body
        finally:
            endpoint.delete()
    guard.assert_offline()
    logits = json.loads(body)
    expected = eager_logits(bert_model_dir, [BLOG_SENTENCE])[0]
    assert len(logits) == 1
    assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(logits[0], expected, strict=True))
