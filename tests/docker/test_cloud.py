"""`smlocal cloud` with the real SageMaker SDK 2.x, boto3 and Docker engine (issue 11, C1-C19):
the blog's notebook in cloud mode with nothing but `smlocal cloud env`, plain boto3 on the
endpoint, a failing script, StopTrainingJob, MaxRuntimeInSeconds, ContainerEntrypoint, and a
restart that keeps the trained model.

The server runs as users run it (`smlocal cloud up --detach`, its own process); the SDK calls
run in this process under a NetworkGuard: any connection or lookup beyond loopback, the Docker
socket and Docker's networks fails the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.cloud import docker_engine
from harness.cloud.settings import instance_id
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.sdk, pytest.mark.docker]

BLOG_SENTENCE = "Somebody just left - guess who."
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"
# The blog's estimator hyperparameters, plus what keeps two hosts quick on a shared machine.
HYPERPARAMETERS = {"epochs": 1, "num_labels": 2, "backend": "gloo",
                   "num-threads": 1, "patience": 0, "test-batch-size": 64}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A script that waits to be stopped and says when SIGTERM arrives (T6).
SLEEPER = """\
import signal, sys, time
def stop(*_):
    print("got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("sleeping", flush=True)
time.sleep(600)
"""


def smlocal(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@dataclass
class Cloud:
    state_dir: Path
    port: int
    env: dict[str, str]

    def up(self) -> None:
        result = smlocal("cloud", "up", "--detach", "--port", str(self.port), "--state-dir",
                         str(self.state_dir))
        assert result.returncode == 0, result.stdout + result.stderr
        env = smlocal("cloud", "env", "--state-dir", str(self.state_dir))
        assert env.returncode == 0, env.stderr
        self.env = dict(line.removeprefix("export ").split("=", 1)
                        for line in env.stdout.splitlines())

    def down(self) -> str:
        result = smlocal("cloud", "down", "--state-dir", str(self.state_dir))
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    @property
    def instance(self) -> str:
        return instance_id(self.state_dir)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session(region_name=self.env["AWS_DEFAULT_REGION"]).client(
            service)


@pytest.fixture(scope="module")
def cloud(smlocal_image: str, tools: SimpleNamespace,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """`smlocal cloud up --detach`, and this process's environment from `smlocal cloud env`
    (what `eval "$(smlocal cloud env)"` does to a shell)."""
    server = Cloud(tmp_path_factory.mktemp("cloud") / "state", tools.free_port(), {})
    server.up()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        try:
            yield server
        finally:
            print((server.state_dir / "server.log").read_text(errors="replace")[-5000:],
                  file=sys.stderr)
            server.down()
    assert docker_engine.our_containers(server.instance) == [], "down leaves no container"
    assert docker_engine.our_networks(server.instance) == [], "down leaves no network"


@dataclass
class Notebook:
    estimator: Any
    predictor: Any
    fit_log: str
    guard: NetworkGuard
    channels: dict[str, str]


@pytest.fixture(scope="module")
def notebook(cloud: Cloud, small_cola_dir: Path, tools: SimpleNamespace) -> Iterator[Notebook]:
    """The blog's notebook, cloud mode: upload_data, PyTorch(... instance_count=2,
    instance_type="ml.m5.xlarge") with no image_uri, fit() with logs, deploy()."""
    import sagemaker
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.pytorch import PyTorch
    from sagemaker.serializers import JSONSerializer

    streamed = io.StringIO()
    with NetworkGuard() as guard:
        session = sagemaker.Session()
        bucket = session.default_bucket()
        prefix = "sagemaker/DEMO-pytorch-bert"
        channels = {
            "training": session.upload_data(str(small_cola_dir / "train.csv"), bucket=bucket,
                                            key_prefix=f"{prefix}/train"),
            "testing": session.upload_data(str(small_cola_dir / "test.csv"), bucket=bucket,
                                           key_prefix=f"{prefix}/test"),
        }
        estimator = PyTorch(entry_point="train.py", source_dir=str(tools.handlers), role=ROLE,
                            framework_version="1.3.1", py_version="py3", instance_count=2,
                            instance_type="ml.m5.xlarge", hyperparameters=HYPERPARAMETERS)
        with contextlib.redirect_stdout(streamed):
            try:
                estimator.fit({name: uri.rsplit("/", 1)[0] for name, uri in channels.items()})
            finally:
                print(streamed.getvalue(), file=sys.stderr)
        predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.xlarge")
        predictor.serializer = JSONSerializer()
        predictor.deserializer = JSONDeserializer()
    try:
        yield Notebook(estimator, predictor, ANSI.sub("", streamed.getvalue()), guard, channels)
    finally:
        with contextlib.suppress(Exception):
            predictor.delete_endpoint()


def test_C4_C16_T12_T14_fit_on_two_hosts_streams_both_logs_and_syncs_gradients(
        notebook: Notebook) -> None:
    notebook.guard.assert_offline()
    log = notebook.fit_log
    checksums = dict(re.findall(r"Parameter checksum \(rank (\d)\): (\w+)", log))
    fingerprints = dict(re.findall(r"Shard fingerprint \(rank (\d)\): (\w+)", log))
    assert sorted(checksums) == ["0", "1"], log[-3000:]
    assert checksums["0"] == checksums["1"], "gradients were synchronised: the same weights"
    assert fingerprints["0"] != fingerprints["1"], "each host trained on its own shard"
    # Both ranks' lines above came through fit(logs=True): one log stream per host (C16).
    assert "Training job completed" in log or "Completed" in log


def test_C5_C6_C18_the_job_ran_the_aws_image_uri_as_ours_and_left_its_artifacts(
        cloud: Cloud, notebook: Notebook) -> None:
    job = notebook.estimator.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Completed"
    image = job["AlgorithmSpecification"]["TrainingImage"]
    assert image.startswith("763104351884.dkr.ecr.") and "pytorch-training:1.3.1-cpu-py3" in image
    submit = json.loads(job["HyperParameters"]["sagemaker_submit_directory"])
    assert submit.startswith("s3://") and submit.endswith("/source/sourcedir.tar.gz")
    model = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model == (f"{job['OutputDataConfig']['S3OutputPath'].rstrip('/')}/"
                     f"{job['TrainingJobName']}/output/model.tar.gz")
    s3 = cloud.client("s3")
    bucket, key = model[len("s3://"):].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                      ) as archive:
        names = archive.getnames()
    assert "config.json" in names and any(name.endswith(".safetensors") for name in names)
    output = key.replace("model.tar.gz", "output.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=output)["Body"].read())
                      ) as archive:
        assert "success" in archive.getnames()
        metrics = archive.extractfile("data/metrics.json")
        assert metrics is not None and "final" in json.loads(metrics.read())


def test_C8_C9_predict_answers_with_the_trained_model(cloud: Cloud, notebook: Notebook,
                                                      tools: SimpleNamespace,
                                                      tmp_path: Path) -> None:
    with NetworkGuard() as guard:
        logits = notebook.predictor.predict(BLOG_SENTENCE)
    guard.assert_offline()
    # The served model is the one trained: the same logits as the eager model from S3.
    model = notebook.estimator.model_data
    bucket, key = model[len("s3://"):].split("/", 1)
    data = cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(tmp_path, filter="data")
    expected = tools.eager_logits(tmp_path, [BLOG_SENTENCE])
    assert len(logits) == 1 and len(logits[0]) == 2
    assert logits[0] == pytest.approx(expected[0], abs=1e-4)


def _endpoint_container_url(cloud: Cloud, endpoint_name: str) -> str:
    containers = docker_engine.our_containers(cloud.instance,
                                              **{docker_engine.NAME_LABEL: endpoint_name})
    assert len(containers) == 1
    containers[0].reload()
    port = containers[0].ports["8080/tcp"][0]["HostPort"]
    return f"http://127.0.0.1:{port}"


def test_C9_boto3_invoke_endpoint_good_rejected_and_oversized(
        cloud: Cloud, notebook: Notebook, tools: SimpleNamespace) -> None:
    runtime = cloud.client("sagemaker-runtime")
    name = notebook.predictor.endpoint_name
    with NetworkGuard() as guard:
        good = runtime.invoke_endpoint(
            EndpointName=name, Body=json.dumps([BLOG_SENTENCE]), ContentType="application/json",
            Accept="application/json", CustomAttributes="trace=1", InferenceId="req-1")
        body = json.loads(good["Body"].read())
        assert good["InvokedProductionVariant"] == "AllTraffic"
        assert good["ContentType"].startswith("application/json")
        assert len(body) == 1 and len(body[0]) == 2

        rejected = b"<sentence>no</sentence>"
        with pytest.raises(runtime.exceptions.ModelError) as raised:
            runtime.invoke_endpoint(EndpointName=name, Body=rejected,
                                    ContentType="application/xml")
        with pytest.raises(Exception) as oversized:
            runtime.invoke_endpoint(EndpointName=name, Body=b"x" * (6 * 1024 * 1024 + 1),
                                    ContentType="application/json")
    guard.assert_offline()
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    # What the container itself answers to the same request, passed on unchanged.
    direct = tools.http("POST", f"{_endpoint_container_url(cloud, name)}/invocations", rejected,
                        "application/xml")
    assert error["OriginalStatusCode"] == direct.status and direct.status >= 400
    assert error["OriginalMessage"] == direct.body.decode()[:4096]
    assert error["LogStreamArn"].endswith(f":log-group:/aws/sagemaker/Endpoints/{name}")
    assert oversized.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413  # type: ignore[attr-defined]


def test_C10_delete_endpoint_removes_its_containers(cloud: Cloud, notebook: Notebook) -> None:
    name = notebook.predictor.endpoint_name
    with NetworkGuard() as guard:
        notebook.predictor.delete_endpoint()
    guard.assert_offline()
    sagemaker = cloud.client("sagemaker")
    with pytest.raises(sagemaker.exceptions.ClientError, match="Could not find endpoint"):
        sagemaker.describe_endpoint(EndpointName=name)
    deadline = time.monotonic() + 60
    while docker_engine.our_containers(cloud.instance, **{docker_engine.NAME_LABEL: name}):
        assert time.monotonic() < deadline, "the endpoint's container outlived it"
        time.sleep(0.5)


def test_T5_T11_a_failing_script_fails_fit_with_its_error(cloud: Cloud,
                                                          tmp_path: Path) -> None:
    from sagemaker.pytorch import PyTorch

    (tmp_path / "train.py").write_text(
        "raise ValueError('cloud failure marker 42')\n")
    estimator = PyTorch(entry_point="train.py", source_dir=str(tmp_path), role=ROLE,
                        framework_version="1.3.1", py_version="py3", instance_count=1,
                        instance_type="ml.m5.xlarge")
    with NetworkGuard() as guard, pytest.raises(Exception) as raised:
        estimator.fit(logs=False)
    guard.assert_offline()
    assert "cloud failure marker 42" in str(raised.value)
    job = estimator.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Failed"
    assert "ExecuteUserScriptError" in job["FailureReason"]
    assert "ValueError: cloud failure marker 42" in job["FailureReason"]


def _code_archive(cloud: Cloud, files: dict[str, str], key: str) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bucket = "smlocal-test-code"
    s3 = cloud.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def _create_job(cloud: Cloud, name: str, *, program: str | None = None,
                source: str | None = None, max_runtime_s: int = 3600,
                algorithm: dict[str, Any] | None = None,
                channels: list[dict[str, Any]] | None = None,
                checkpoint_uri: str | None = None) -> None:
    hyperparameters = {}
    if program and source:
        hyperparameters = {"sagemaker_program": json.dumps(program),
                           "sagemaker_submit_directory": json.dumps(source)}
    cloud.client("sagemaker").create_training_job(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters=hyperparameters,
        AlgorithmSpecification={"TrainingImage": "smlocal:latest", "TrainingInputMode": "File",
                                **(algorithm or {})},
        **({"InputDataConfig": channels} if channels else {}),
        **({"CheckpointConfig": {"S3Uri": checkpoint_uri}} if checkpoint_uri else {}),
        OutputDataConfig={"S3OutputPath": "s3://smlocal-test-code/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                        "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime_s})


def _wait_for(cloud: Cloud, name: str, statuses: set[str], timeout: float = 180
              ) -> dict[str, Any]:
    sagemaker = cloud.client("sagemaker")
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = sagemaker.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in statuses:
            return job
        assert time.monotonic() < deadline, f"{name} still {job['TrainingJobStatus']}"
        time.sleep(0.5)


def _job_log(cloud: Cloud, name: str) -> str:
    logs = cloud.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    if not streams:
        return ""  # the host has not started yet
    assert len(streams) == 1 and re.fullmatch(rf"{name}/algo-1-\d+", streams[0]["logStreamName"])
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"],
                                 startFromHead=True)["events"]
    return "\n".join(event["message"] for event in events)


def test_T6_stop_training_job_sends_sigterm_and_ends_stopped(cloud: Cloud) -> None:
    source = _code_archive(cloud, {"sleeper.py": SLEEPER}, "stop/sourcedir.tar.gz")
    name = f"smlocal-test-stop-{os.getpid()}"
    _create_job(cloud, name, program="sleeper.py", source=source)
    deadline = time.monotonic() + 120
    while "sleeping" not in _job_log(cloud, name):
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.5)
    cloud.client("sagemaker").stop_training_job(TrainingJobName=name)
    job = _wait_for(cloud, name, {"Stopped", "Failed", "Completed"}, timeout=60)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    time.sleep(1)  # the last log batch
    assert "got SIGTERM" in _job_log(cloud, name)


def test_max_runtime_in_seconds_stops_the_job(cloud: Cloud) -> None:
    source = _code_archive(cloud, {"sleeper.py": SLEEPER}, "runtime/sourcedir.tar.gz")
    name = f"smlocal-test-runtime-{os.getpid()}"
    _create_job(cloud, name, program="sleeper.py", source=source, max_runtime_s=10)
    job = _wait_for(cloud, name, {"Stopped", "Failed", "Completed"}, timeout=120)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == (
        "Stopped", "MaxRuntimeExceeded")


def test_C12_T4_container_entrypoint_arguments_and_checkpoints_are_honoured(cloud: Cloud) -> None:
    s3 = cloud.client("s3")
    _code_archive(cloud, {}, "unused")  # the bucket
    s3.put_object(Bucket="smlocal-test-code", Key="data/a.csv", Body=b"x\n")
    s3.put_object(Bucket="smlocal-test-code", Key="data/sub/b.csv", Body=b"y\n")
    s3.put_object(Bucket="smlocal-test-code", Key="checkpoints/step-1.txt", Body=b"1\n")
    name = f"smlocal-test-entrypoint-{os.getpid()}"
    script = ("echo \"$CURRENT_HOST\" > /opt/ml/model/host.txt && "
              "cd /opt/ml/input/data/train && find . -type f | sort > /opt/ml/model/files.txt"
              " && cat /opt/ml/checkpoints/step-1.txt > /opt/ml/model/resumed.txt"
              " && echo 2 > /opt/ml/checkpoints/step-2.txt")
    _create_job(cloud, name, algorithm={"ContainerEntrypoint": ["/bin/bash"],
                                        "ContainerArguments": ["-c", script]},
                channels=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://smlocal-test-code/data",
                    "S3DataDistributionType": "FullyReplicated"}}}],
                checkpoint_uri="s3://smlocal-test-code/checkpoints")
    job = _wait_for(cloud, name, {"Stopped", "Failed", "Completed"})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"][len("s3://"):].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                      ) as archive:
        read = {name: archive.extractfile(name)
                for name in ("host.txt", "files.txt", "resumed.txt")}
        texts = {name: handle.read().decode() for name, handle in read.items() if handle}
    assert texts["host.txt"] == "algo-1\n"
    assert texts["files.txt"].split() == ["./a.csv", "./sub/b.csv"]
    # CheckpointConfig: synced down before the start, up after the end (T4).
    assert texts["resumed.txt"] == "1\n"
    saved = s3.get_object(Bucket="smlocal-test-code", Key="checkpoints/step-2.txt")
    assert saved["Body"].read() == b"2\n"


def _wait_in_service(cloud: Cloud, name: str, timeout: float = 180) -> None:
    sagemaker = cloud.client("sagemaker")
    deadline = time.monotonic() + timeout
    while (status := sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]) != \
            "InService":
        assert status == "Creating" and time.monotonic() < deadline, status
        time.sleep(0.5)


def test_restart_keeps_the_trained_model_in_s3_and_serving_endpoints(
        cloud: Cloud, notebook: Notebook) -> None:
    model = notebook.estimator.model_data
    bucket, key = model[len("s3://"):].split("/", 1)
    before = hashlib.sha256(
        cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
    # An endpoint of the deployed model (delete_endpoint() keeps the model): serving before
    # `down`, so `up` starts it again.
    sagemaker = cloud.client("sagemaker")
    served = sagemaker.list_models(NameContains="pytorch-training")["Models"][0]["ModelName"]
    name = f"smlocal-test-restart-{os.getpid()}"
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": served, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.xlarge"}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    _wait_in_service(cloud, name)
    time.sleep(2)  # the last writes reach the disk mirror
    said = cloud.down()
    assert "stopped" in said
    assert docker_engine.our_containers(cloud.instance) == []
    assert docker_engine.our_networks(cloud.instance) == []
    status = smlocal("cloud", "status", "--state-dir", str(cloud.state_dir))
    assert status.returncode == 1 and "not running" in status.stdout
    cloud.up()
    after = hashlib.sha256(
        cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
    assert after == before
    status = smlocal("cloud", "status", "--state-dir", str(cloud.state_dir))
    assert status.returncode == 0, status.stderr
    assert notebook.estimator.latest_training_job.name in status.stdout
    _wait_in_service(cloud, name)
    answer = cloud.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, Body=json.dumps(BLOG_SENTENCE), ContentType="application/json")
    assert len(json.loads(answer["Body"].read())[0]) == 2
    cloud.client("sagemaker").delete_endpoint(EndpointName=name)


def test_C8_an_endpoint_whose_model_cannot_load_fails_with_the_reason(
        cloud: Cloud, tools: SimpleNamespace) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tools.handlers / "inference.py", arcname="code/inference.py")
        broken = b"{ this is not a model config"
        info = tarfile.TarInfo("config.json")
        info.size = len(broken)
        tar.addfile(info, io.BytesIO(broken))
    s3 = cloud.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket="smlocal-test-code")
    s3.put_object(Bucket="smlocal-test-code", Key="broken/model.tar.gz", Body=buffer.getvalue())
    sagemaker = cloud.client("sagemaker")
    name = f"smlocal-test-broken-{os.getpid()}"
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:1.3.1-cpu-py3",
        "ModelDataUrl": "s3://smlocal-test-code/broken/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.xlarge"}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + 180
    while (endpoint := sagemaker.describe_endpoint(EndpointName=name))["EndpointStatus"] == \
            "Creating":
        assert time.monotonic() < deadline, "the endpoint never left Creating"
        time.sleep(1)
    try:
        assert endpoint["EndpointStatus"] == "Failed"
        assert "could not load the model" in endpoint["FailureReason"]
        assert "config.json" in endpoint["FailureReason"] or "JSON" in endpoint["FailureReason"]
        assert docker_engine.our_containers(cloud.instance,
                                            **{docker_engine.NAME_LABEL: name}) == []
    finally:
        sagemaker.delete_endpoint(EndpointName=name)
