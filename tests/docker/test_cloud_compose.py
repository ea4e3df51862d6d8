"""The compose service `cloud` (profile `cloud`) runs the same server as `smlocal cloud up`:
reachable on loopback at its port, S3 kept on the host across `down` and `up`."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.cloud.environment import default_bucket
from harness.cloud.image import build_cloud_image

pytestmark = [pytest.mark.docker]


def _s3(port: int) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="AKIAUSERKEY000000000", aws_secret_access_key="secret",
        region_name="us-east-1").client("s3", endpoint_url=f"http://127.0.0.1:{port}")


def _wait_until_up(port: int, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        s3 = _s3(port)
        try:
            s3.list_buckets()
            return s3
        except Exception:
            assert time.monotonic() < deadline, "the cloud service never answered"
            time.sleep(0.5)


def test_compose_cloud_service_serves_and_keeps_s3(smlocal_image: str, compose_project: Any,
                                                   tools: SimpleNamespace,
                                                   tmp_path: Path) -> None:
    image = build_cloud_image(base_image=smlocal_image)
    port = tools.free_port()
    state = tmp_path / "state"
    project = compose_project({"SMLOCAL_CLOUD_IMAGE": image, "SMLOCAL_CLOUD_PORT": str(port),
                               "SMLOCAL_CLOUD_DIR": str(state)})
    try:
        project("--profile", "cloud", "up", "-d", "cloud")
        s3 = _wait_until_up(port)
        bucket = default_bucket("us-east-1")
        s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=b"trained")
        time.sleep(2)  # the disk mirror
        project("--profile", "cloud", "down", "--timeout", "30")
        assert (state / "s3" / "manifest.json").is_file(), "S3 lives on the host"
        project("--profile", "cloud", "up", "-d", "cloud")
        s3 = _wait_until_up(port)
        assert s3.get_object(Bucket=bucket, Key="model.tar.gz")["Body"].read() == b"trained"
    finally:
        project("--profile", "cloud", "down", "--timeout", "30", check=False)
