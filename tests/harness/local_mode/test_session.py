"""harness.local_mode.session: the offline LocalSession (L8-L11), with the real SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.local_mode.session import (
    DUMMY_ACCESS_KEY,
    REGION,
    SDK_CONFIG,
    offline_session,
    prepare_process,
)
from harness.testing.network_guard import NetworkGuard

pytestmark = pytest.mark.sdk


def test_l8_l11_the_session_is_offline_and_rooted(tmp_path: Path) -> None:
    with NetworkGuard() as guard:
        session = offline_session(tmp_path / "root")
    guard.assert_offline()
    # L11: local code, everything under one root.
    assert session.config == {
        "local": {"local_code": True, "container_root": str((tmp_path / "root").resolve())}
    }
    assert (tmp_path / "root").is_dir()
    assert session.local_mode
    # L8-L10: no credential chain, no instance metadata, no region lookup.
    credentials = session.boto_session.get_credentials()
    assert credentials.access_key == DUMMY_ACCESS_KEY
    assert session.boto_region_name == REGION


def test_l8_telemetry_is_opted_out(tmp_path: Path) -> None:
    """L8: the SDK's own decorator resolves the opt-out from the session's config."""
    from sagemaker.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.utils import resolve_value_from_config

    session = offline_session(tmp_path)
    assert session.sagemaker_config == SDK_CONFIG
    assert resolve_value_from_config(None, TELEMETRY_OPT_OUT_PATH, default_value=False,
                                     sagemaker_session=session) is True


def test_l8_prepare_process_keeps_the_users_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    prepare_process()
    import os

    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"


def test_l5_the_serving_port_reaches_the_runtime_client(tmp_path: Path) -> None:
    session = offline_session(tmp_path, serving_port=18123)
    assert session.config["local"]["serving_port"] == 18123
    assert session.sagemaker_runtime_client.serving_port == 18123
