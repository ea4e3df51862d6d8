"""A `smlocal cloud` server in this process, without Docker: S3, STS, IAM, Logs and the
control plane's records answer; jobs and endpoints (which need containers) are for
tests/docker/test_cloud.py."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cloud.server import CloudServer
from harness.cloud.settings import CloudSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def cloud_settings(tmp_path: Path) -> CloudSettings:
    settings = CloudSettings.from_environ({}, port=free_port(), state_dir=tmp_path / "state")
    # Loopback only: no Docker bridge needed for what these tests ask.
    return dataclasses.replace(settings, bridge_address="127.0.0.1")


@pytest.fixture
def cloud(cloud_settings: CloudSettings) -> Iterator[CloudServer]:
    server = CloudServer(cloud_settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(settings: CloudSettings, service: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="AKIAUSERKEY000000000", aws_secret_access_key="secret",
        region_name=settings.region,
    ).client(service, endpoint_url=settings.loopback_url)


@pytest.fixture
def aws(cloud: CloudServer) -> Any:
    """`aws("s3")`: a boto3 client of the running server, as a user's code makes one."""
    return lambda service: client(cloud.settings, service)
