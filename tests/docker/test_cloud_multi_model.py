"""Multi-model endpoints through `smlocal cloud` (issue 16): CreateModel with
`Mode: MultiModel` and an S3 prefix, boto3 InvokeEndpoint with `TargetModel` loading each
target on first use and routing to it, SageMaker's errors, and a target the container dropped
loaded again.

Two archives under one prefix: the trained test model with handlers/inference.py as code/, and
a small one whose handler names itself. The server runs as users run it (`smlocal cloud up
--detach`); the boto3 calls run under a NetworkGuard.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from harness.cloud import docker_engine
from harness.cloud.multi_model import container_model_name
from harness.cloud.settings import instance_id
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.docker]

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:1.3.1-cpu-py3"
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"
NAMED = """
def model_fn(model_dir):
    return "model b"

def transform_fn(model, data, content_type, accept):
    return f"{model}: {data.decode() if isinstance(data, bytes) else data}"
"""

BROKEN = """
def model_fn(model_dir):
    raise RuntimeError("no weights here")
"""


def smlocal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def tar_gz(files: dict[str, Path | str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, source in sorted(files.items()):
            if isinstance(source, Path):
                tar.add(source, arcname=name)
            else:
                info = tarfile.TarInfo(name)
                data = source.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cloud_env(smlocal_image: str, tools: SimpleNamespace,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    state = tmp_path_factory.mktemp("cloud-mme") / "state"
    port = str(tools.free_port())
    up = smlocal("cloud", "up", "--detach", "--port", port, "--state-dir", str(state))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        env = smlocal("cloud", "env", "--state-dir", str(state))
        assert env.returncode == 0, env.stderr
        variables = dict(line.removeprefix("export ").split("=", 1)
                         for line in env.stdout.splitlines())
        with pytest.MonkeyPatch.context() as patch:
            for name, value in variables.items():
                patch.setenv(name, value)
            yield SimpleNamespace(instance=instance_id(state), state=state)
    finally:
        print((state / "server.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        down = smlocal("cloud", "down", "--state-dir", str(state))
        assert down.returncode == 0, down.stdout + down.stderr
    assert docker_engine.our_containers(instance_id(state)) == []


def client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


@pytest.fixture(scope="module")
def endpoint(cloud_env: SimpleNamespace, bert_model_dir: Path,
             tools: SimpleNamespace) -> Iterator[str]:
    """A multi-model endpoint over s3://<bucket>/mme/ holding cola-a.tar.gz (the trained test
    model with handlers/inference.py) and cola-b.tar.gz (a handler that names itself)."""
    with NetworkGuard() as guard:
        s3, sagemaker = client("s3"), client("sagemaker")
        s3.create_bucket(Bucket="mme-models")
        model_a: dict[str, Path | str] = {
            path.name: path for path in bert_model_dir.iterdir() if path.is_file()}
        model_a["code/inference.py"] = tools.handlers / "inference.py"
        s3.put_object(Bucket="mme-models", Key="mme/cola-a.tar.gz", Body=tar_gz(model_a))
        s3.put_object(Bucket="mme-models", Key="mme/cola-b.tar.gz",
                      Body=tar_gz({"code/inference.py": textwrap.dedent(NAMED)}))
        s3.put_object(Bucket="mme-models", Key="mme/broken.tar.gz",
                      Body=tar_gz({"code/inference.py": BROKEN}))
        sagemaker.create_model(
            ModelName="mme", ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "Mode": "MultiModel",
                              "ModelDataUrl": "s3://mme-models/mme/"})
        sagemaker.create_endpoint_config(EndpointConfigName="mme", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "mme", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.xlarge"}])
        sagemaker.create_endpoint(EndpointName="mme", EndpointConfigName="mme")
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName="mme", WaiterConfig={"Delay": 1, "MaxAttempts": 240})
    guard.assert_offline()
    try:
        yield "mme"
    finally:
        client("sagemaker").delete_endpoint(EndpointName="mme")


def invoke(target: str | None, body: str, content_type: str = "application/json") -> Any:
    extra = {"TargetModel": target} if target is not None else {}
    return client("sagemaker-runtime").invoke_endpoint(
        EndpointName="mme", Body=body, ContentType=content_type, Accept="application/json",
        **extra)


def container_url(cloud_env: SimpleNamespace) -> str:
    (container,) = docker_engine.our_containers(
        cloud_env.instance, **{docker_engine.NAME_LABEL: "mme"})
    container.reload()
    return f"http://127.0.0.1:{container.ports['8080/tcp'][0]['HostPort']}"


def test_C9_target_model_loads_on_first_use_and_routes_to_each_model(
        cloud_env: SimpleNamespace, endpoint: str) -> None:
    # Nothing loaded before the first invocation: SageMaker loads targets on demand.
    assert httpx.get(f"{container_url(cloud_env)}/models").json() == {"models": []}
    with NetworkGuard() as guard:
        a = invoke("cola-a.tar.gz", json.dumps(["Somebody just left - guess who."]))
        b = invoke("cola-b.tar.gz", "hello", "text/plain")
        a_again = invoke("cola-a.tar.gz", json.dumps(["The more you eat, the fatter."]))
    guard.assert_offline()
    logits = json.loads(a["Body"].read())
    assert len(logits) == 1 and len(logits[0]) == 2
    assert b["Body"].read() == b"model b: hello"
    assert len(json.loads(a_again["Body"].read())[0]) == 2
    loaded = httpx.get(f"{container_url(cloud_env)}/models").json()["models"]
    assert sorted(model["modelName"] for model in loaded) == sorted(
        container_model_name(target) for target in ("cola-a.tar.gz", "cola-b.tar.gz"))
    assert {model["modelUrl"] for model in loaded} == {
        f"/opt/ml/models/{container_model_name(t)}/model"
        for t in ("cola-a.tar.gz", "cola-b.tar.gz")}


def test_C9_unknown_target_and_missing_header_are_validation_errors(endpoint: str) -> None:
    with NetworkGuard() as guard:
        with pytest.raises(ClientError) as unknown:
            invoke("cola-z.tar.gz", "[]")
        with pytest.raises(ClientError) as missing:
            invoke(None, "[]")
    guard.assert_offline()
    for raised in (unknown, missing):
        assert raised.value.response["Error"]["Code"] == "ValidationError"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Failed to download model data(bucket: mme-models, key: mme/cola-z.tar.gz)" in str(
        unknown.value)
    assert "is missing a target model header" in str(missing.value)


def test_C9_a_target_that_cannot_load_is_a_model_error(endpoint: str) -> None:
    with NetworkGuard() as guard, pytest.raises(ClientError) as broken:
        invoke("broken.tar.gz", "[]")
    guard.assert_offline()
    error = broken.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "no weights here" in error["OriginalMessage"]
    assert error["OriginalStatusCode"] >= 400


def test_C9_a_target_the_container_dropped_is_loaded_again(
        cloud_env: SimpleNamespace, endpoint: str) -> None:
    url = container_url(cloud_env)
    assert invoke("cola-b.tar.gz", "one", "text/plain")["Body"].read() == b"model b: one"
    dropped = httpx.delete(f"{url}/models/{container_model_name('cola-b.tar.gz')}")
    assert dropped.status_code == 200
    with NetworkGuard() as guard:
        again = invoke("cola-b.tar.gz", "two", "text/plain")
    guard.assert_offline()
    assert again["Body"].read() == b"model b: two"
    # Routed through the retry: the container answered 404 and got the model again.
    assert "cola-b.tar.gz was gone" in (cloud_env.state / "server.log").read_text()
    names = [model["modelName"] for model in httpx.get(f"{url}/models").json()["models"]]
    assert container_model_name("cola-b.tar.gz") in names



@pytest.mark.sdk
def test_C9_the_sdk_multi_data_model_deploys_adds_lists_and_predicts(endpoint: str) -> None:
    """SDK 2.x's MultiDataModel, as its docs use it: deploy over an empty prefix, add_model
    (an S3 copy into the prefix), list_models, predict(target_model=...)."""
    import sagemaker
    from sagemaker.multidatamodel import MultiDataModel
    from sagemaker.predictor import Predictor

    with NetworkGuard() as guard:
        session = sagemaker.Session()
        models = MultiDataModel(name="mme-sdk", model_data_prefix="s3://mme-models/sdk/",
                                image_uri=IMAGE, role=ROLE, sagemaker_session=session,
                                predictor_cls=Predictor)
        # wait=False, then the SDK's own wait at 1 s polls (its default polls every 30 s).
        predictor = models.deploy(initial_instance_count=1, instance_type="ml.m5.xlarge",
                                  wait=False)
        try:
            session.wait_for_endpoint("mme-sdk", poll=1)
            assert list(models.list_models()) == []
            models.add_model("s3://mme-models/mme/cola-b.tar.gz", "b.tar.gz")
            listed = list(models.list_models())
            answer = predictor.predict(b"hi", target_model="b.tar.gz")
        finally:
            predictor.delete_endpoint()
    guard.assert_offline()
    assert listed == ["b.tar.gz"]
    assert answer == b"model b: hi"
    described = client("sagemaker").describe_model(ModelName="mme-sdk")["PrimaryContainer"]
    assert described["Mode"] == "MultiModel"
    assert described["ModelDataUrl"] == "s3://mme-models/sdk/"
