"""`smlocal cloud up --serving-image reference` (issue 15): endpoints of AWS PyTorch inference
image URIs run the reference image (the AWS serving stack: the toolkit on TorchServe), and are
InService only once every TorchServe worker has loaded the model (docs/fidelity.md F5: its
/ping is 200 before that).

The model archive carries its handlers in code/, as the SDK's repack leaves it: the reference
image reads handlers only from /opt/ml/model/code.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from harness.cloud import docker_engine
from harness.cloud.settings import instance_id
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.docker]

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:1.3.1-cpu-py3"
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def smlocal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def reference_cloud(reference_image: str, tools: SimpleNamespace,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("cloud-reference") / "state"
    up = smlocal("cloud", "up", "--detach", "--port", str(tools.free_port()), "--state-dir",
                 str(state), "--serving-image", "reference")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        env = smlocal("cloud", "env", "--state-dir", str(state))
        assert env.returncode == 0, env.stderr
        with pytest.MonkeyPatch.context() as patch:
            for line in env.stdout.splitlines():
                name, value = line.removeprefix("export ").split("=", 1)
                patch.setenv(name, value)
            yield instance_id(state)
    finally:
        print((state / "server.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        down = smlocal("cloud", "down", "--state-dir", str(state))
        assert down.returncode == 0, down.stdout + down.stderr


def client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


def model_archive(model_dir: Path, handlers: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(model_dir.iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
        tar.add(handlers / "inference.py", arcname="code/inference.py")
    return buffer.getvalue()


def test_C8_C18_F5_endpoints_run_the_reference_image_and_serve_once_in_service(
        reference_cloud: str, reference_image: str, bert_model_dir: Path,
        tools: SimpleNamespace) -> None:
    with NetworkGuard() as guard:
        s3, sagemaker = client("s3"), client("sagemaker")
        s3.create_bucket(Bucket="reference-models")
        s3.put_object(Bucket="reference-models", Key="cola/model.tar.gz",
                      Body=model_archive(bert_model_dir, tools.handlers))
        sagemaker.create_model(ModelName="cola-ref", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": IMAGE, "ModelDataUrl": "s3://reference-models/cola/model.tar.gz",
            # One TorchServe worker: the AWS entrypoint would start one per CPU.
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_TS_MIN_WORKERS": "1", "SAGEMAKER_TS_MAX_WORKERS": "1"}})
        sagemaker.create_endpoint_config(EndpointConfigName="cola-ref", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "cola-ref", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.xlarge"}])
        sagemaker.create_endpoint(EndpointName="cola-ref", EndpointConfigName="cola-ref")
        try:
            sagemaker.get_waiter("endpoint_in_service").wait(
                EndpointName="cola-ref", WaiterConfig={"Delay": 1, "MaxAttempts": 300})
            (container,) = docker_engine.our_containers(
                reference_cloud, **{docker_engine.NAME_LABEL: "cola-ref"})
            container.reload()
            port = container.ports["8080/tcp"][0]["HostPort"]
            # InService means loaded: TorchServe lists every worker READY at that moment.
            workers = httpx.get(f"http://127.0.0.1:{port}/models/model").json()[0]["workers"]
            answer = client("sagemaker-runtime").invoke_endpoint(
                EndpointName="cola-ref", Body=json.dumps(["Somebody just left - guess who."]),
                ContentType="application/json", Accept="application/json")
            described = sagemaker.describe_endpoint(EndpointName="cola-ref")
            # A single-model endpoint refuses TargetModel, as SageMaker does (C9).
            with pytest.raises(ClientError) as targeted:
                client("sagemaker-runtime").invoke_endpoint(
                    EndpointName="cola-ref", Body=b"[]", ContentType="application/json",
                    TargetModel="a.tar.gz")
        finally:
            sagemaker.delete_endpoint(EndpointName="cola-ref")
    guard.assert_offline()
    assert container.image.tags == [reference_image]
    assert workers and all(worker["status"] == "READY" for worker in workers)
    logits = json.loads(answer["Body"].read())
    assert len(logits) == 1 and len(logits[0]) == 2
    assert targeted.value.response["Error"]["Code"] == "ValidationError"
    assert "is not a multi-model endpoint" in str(targeted.value)
    (deployed,) = described["ProductionVariants"][0]["DeployedImages"]
    assert deployed["SpecifiedImage"] == IMAGE
    assert deployed["ResolvedImage"] == reference_image


NAMED = """
def model_fn(model_dir):
    return "model b"

def transform_fn(model, data, content_type, accept):
    return f"{model}: {bytes(data).decode()}"
"""


def test_C9_F5_a_multi_model_endpoint_on_the_reference_image_loads_and_routes_targets(
        reference_cloud: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(NAMED.encode())
        tar.addfile(info, io.BytesIO(NAMED.encode()))
    with NetworkGuard() as guard:
        s3, sagemaker = client("s3"), client("sagemaker")
        s3.create_bucket(Bucket="reference-mme")
        s3.put_object(Bucket="reference-mme", Key="mme/b.tar.gz", Body=buffer.getvalue())
        sagemaker.create_model(ModelName="ref-mme", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": IMAGE, "Mode": "MultiModel", "ModelDataUrl": "s3://reference-mme/mme/",
            "Environment": {"SAGEMAKER_TS_MIN_WORKERS": "1", "SAGEMAKER_TS_MAX_WORKERS": "1"}})
        sagemaker.create_endpoint_config(EndpointConfigName="ref-mme", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "ref-mme", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.xlarge"}])
        sagemaker.create_endpoint(EndpointName="ref-mme", EndpointConfigName="ref-mme")
        try:
            sagemaker.get_waiter("endpoint_in_service").wait(
                EndpointName="ref-mme", WaiterConfig={"Delay": 1, "MaxAttempts": 300})
            runtime = client("sagemaker-runtime")
            answer = runtime.invoke_endpoint(EndpointName="ref-mme", Body=b"hi",
                                             ContentType="text/plain", TargetModel="b.tar.gz")
            with pytest.raises(ClientError) as unknown:
                runtime.invoke_endpoint(EndpointName="ref-mme", Body=b"hi",
                                        ContentType="text/plain", TargetModel="z.tar.gz")
        finally:
            sagemaker.delete_endpoint(EndpointName="ref-mme")
    guard.assert_offline()
    assert answer["Body"].read() == b"model b: hi"
    assert unknown.value.response["Error"]["Code"] == "ValidationError"
