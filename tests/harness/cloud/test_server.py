"""The cloud server without Docker: one port for moto's services and our control plane and
runtime (C1-C3, C11, C14, C17, C19), and S3 kept across a restart."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.cloud.environment import default_bucket
from harness.cloud.protocol import validate_output
from harness.cloud.server import CloudServer
from harness.cloud.settings import CloudSettings
from tests.harness.cloud.conftest import client

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def test_C1_C2_env_points_every_service_at_the_server_with_a_default_bucket(
        cloud: CloudServer, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["cloud", "env", "--state-dir", str(cloud.settings.state_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("export ") for line in lines)
    env = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    url = cloud.settings.loopback_url
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_S3",
                 "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_STS",
                 "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"):
        assert env[name] == url, name
    assert env["AWS_DEFAULT_REGION"] == cloud.settings.region
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    config = yaml.safe_load(Path(env["SAGEMAKER_USER_CONFIG_OVERRIDE"]).read_text())
    modules = config["SageMaker"]["PythonSDK"]["Modules"]
    assert modules["TelemetryOptOut"] is True
    bucket = modules["Session"]["DefaultS3Bucket"]
    assert bucket == default_bucket(cloud.settings.region)
    # The server made the bucket: the SDK's HeadBucket finds it (C4).
    client(cloud.settings, "s3").head_bucket(Bucket=bucket)


def test_C3_requests_are_validated_against_botocore_sagemaker_model(aws: Any) -> None:
    unchecked = client_without_validation(aws)
    with pytest.raises(ClientError) as raised:
        unchecked.create_training_job(TrainingJobName="no-role")
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "RoleArn" in error["Message"] and "OutputDataConfig" in error["Message"]
    with pytest.raises(ClientError) as raised:
        unchecked.describe_endpoint(EndpointName=12)
    assert "Invalid type for parameter EndpointName" in raised.value.response["Error"]["Message"]


def client_without_validation(aws: Any) -> Any:
    """A client that sends what it is given: the server must do the checking."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id="AKIAUSERKEY000000000", aws_secret_access_key="secret",
        region_name="us-east-1",
    ).client("sagemaker", endpoint_url=aws("sagemaker").meta.endpoint_url,
             config=Config(parameter_validation=False))


def test_C3_runtime_shares_the_port_and_names_unknown_endpoints(aws: Any) -> None:
    runtime = aws("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="nowhere", Body=b"[]",
                                ContentType="application/json")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "nowhere" in raised.value.response["Error"]["Message"]


def test_C9_a_body_over_6_mb_is_refused_before_routing(aws: Any) -> None:
    with pytest.raises(ClientError) as raised:
        aws("sagemaker-runtime").invoke_endpoint(
            EndpointName="nowhere", Body=b"x" * (6 * 1024 * 1024 + 1),
            ContentType="application/json")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "6291456" in str(raised.value)


def test_C11_any_role_exists_and_every_action_is_allowed(aws: Any) -> None:
    iam = aws("iam")
    role = iam.get_role(RoleName="SageMakerRole")["Role"]
    trusted = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
    assert trusted == "sagemaker.amazonaws.com"
    results = iam.simulate_principal_policy(
        PolicySourceArn=role["Arn"],
        ActionNames=["sagemaker:CreateTrainingJob", "s3:GetObject"])["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in results] == [
        ("sagemaker:CreateTrainingJob", "allowed"), ("s3:GetObject", "allowed")]


def test_C19_s3_sts_and_logs_are_moto(aws: Any) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="a/b.csv", Body=b"label,sentence\n1,ok\n")
    assert s3.get_object(Bucket="data", Key="a/b.csv")["Body"].read().startswith(b"label")
    assert aws("sts").get_caller_identity()["Account"].isdigit()
    logs = aws("logs")
    logs.create_log_group(logGroupName="/g")
    logs.create_log_stream(logGroupName="/g", logStreamName="s")
    logs.put_log_events(logGroupName="/g", logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello"}])
    events = logs.get_log_events(logGroupName="/g", logStreamName="s")["events"]
    assert [event["message"] for event in events] == ["hello"]


def test_C17_the_last_page_of_log_streams_has_no_next_token(aws: Any) -> None:
    logs = aws("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    for host in ("algo-1", "algo-2"):
        logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs",
                               logStreamName=f"job/{host}-1")
    # What SDK 2.x asks (limit = the instance count); a nextToken here makes fit loop forever.
    reply = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                      logStreamNamePrefix="job/", orderBy="LogStreamName",
                                      limit=2)
    assert len(reply["logStreams"]) == 2
    assert "nextToken" not in reply


def test_C14_records_answer_in_shapes_botocore_accepts_without_empty_members(
        aws: Any) -> None:
    sagemaker = aws("sagemaker")
    sagemaker.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:1.3.1-cpu-py3",
        "ModelDataUrl": "s3://bucket/model.tar.gz", "Environment": {"SAGEMAKER_PROGRAM": "x"}})
    sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.xlarge"}])
    answers = {
        "DescribeModel": sagemaker.describe_model(ModelName="m"),
        "DescribeEndpointConfig": sagemaker.describe_endpoint_config(EndpointConfigName="c"),
        "ListModels": sagemaker.list_models(),
        "ListEndpointConfigs": sagemaker.list_endpoint_configs(),
        "ListTrainingJobs": sagemaker.list_training_jobs(),
        "ListEndpoints": sagemaker.list_endpoints(),
    }
    for operation, answer in answers.items():
        answer.pop("ResponseMetadata")
        assert validate_output(operation, answer) == [], operation
        assert_no_empty_structures(answer, operation)
    assert answers["DescribeModel"]["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_PROGRAM": "x"}
    assert "VpcConfig" not in answers["DescribeModel"]
    with pytest.raises(ClientError) as raised:
        sagemaker.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                               PrimaryContainer={"Image": "x"})
    assert "already existing" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        sagemaker.describe_model(ModelName="absent")
    assert "Could not find model" in raised.value.response["Error"]["Message"]


def assert_no_empty_structures(value: object, where: str) -> None:
    if isinstance(value, dict):
        assert value, f"{where}: an empty structure (C14)"
        for key, item in value.items():
            assert_no_empty_structures(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            assert_no_empty_structures(item, where)


def test_unimplemented_operations_say_so(aws: Any) -> None:
    with pytest.raises(ClientError) as raised:
        aws("sagemaker").list_notebook_instances()
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "ListNotebookInstances" in raised.value.response["Error"]["Message"]


def test_restart_keeps_s3_objects_and_records(cloud_settings: CloudSettings) -> None:
    payload = os.urandom(3 * 1024 * 1024)  # big enough for a multipart upload
    first = CloudServer(cloud_settings)
    first.start()
    try:
        s3 = client(cloud_settings, "s3")
        s3.create_bucket(Bucket="models")
        s3.upload_fileobj(_Reader(payload), "models", "job/output/model.tar.gz",
                          Config=_multipart())
        s3.put_object(Bucket="models", Key="gone", Body=b"x")
        s3.delete_object(Bucket="models", Key="gone")
        client(cloud_settings, "sagemaker").create_model(
            ModelName="kept", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"})
        etag = s3.head_object(Bucket="models", Key="job/output/model.tar.gz")["ETag"]
    finally:
        first.stop()
    blobs = cloud_settings.state_dir / "s3" / "blobs"
    assert len(list(blobs.iterdir())) == 1, "one object on disk, the deleted one gone"
    second = CloudServer(cloud_settings)
    second.start()
    try:
        s3 = client(cloud_settings, "s3")
        body = s3.get_object(Bucket="models", Key="job/output/model.tar.gz")["Body"].read()
        assert body == payload
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="models")["Contents"]] == [
            "job/output/model.tar.gz"]
        assert etag  # the content, not the ETag, is what must survive (multipart ETags differ)
        sagemaker = client(cloud_settings, "sagemaker")
        assert sagemaker.describe_model(ModelName="kept")["ModelName"] == "kept"
    finally:
        second.stop()


class _Reader:
    def __init__(self, data: bytes) -> None:
        import io

        self._io = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._io.read(size)


def _multipart() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=1024 * 1024, multipart_chunksize=1024 * 1024)


def test_up_without_a_docker_engine_exits_3_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.harness.cloud.conftest import free_port

    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    env.pop("SMLOCAL_CLOUD_BRIDGE", None)
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "cloud", "up", "--port", str(free_port()),
         "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Docker engine does not answer" in errors[0]
