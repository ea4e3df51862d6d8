"""The settings, read once from the environment at start-up."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from container.serving.settings import MAX_BODY_BYTES, ServingSettings, SettingsError


def test_settings_defaults_match_the_dlc():
    settings = ServingSettings.from_environ({})
    assert settings.model_dir == Path("/opt/ml/model")
    assert settings.code_dir == Path("/opt/ml/model/code")
    assert settings.module_name == "inference"
    assert settings.workers == 1
    assert not settings.strict


def test_s1_port_is_8080_unless_sagemaker_bind_to_port_says_otherwise():
    assert ServingSettings.from_environ({}).port == 8080
    assert ServingSettings.from_environ({"SAGEMAKER_BIND_TO_PORT": "9000"}).port == 9000


def test_s3_timeout_is_60_seconds_unless_sagemaker_model_server_timeout_says_otherwise():
    assert ServingSettings.from_environ({}).timeout_s == 60
    env = {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "5"}
    assert ServingSettings.from_environ(env).timeout_s == 5


def test_s4_bodies_are_capped_at_6_mib():
    settings = ServingSettings.from_environ({})
    assert settings.max_request_bytes == settings.max_response_bytes == MAX_BODY_BYTES == 6291456


def test_s14_sagemaker_program_loses_its_py_suffix_and_base_dir_moves_the_model():
    settings = ServingSettings.from_environ(
        {"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_BASE_DIR": "/srv/ml"}
    )
    assert settings.module_name == "serve"
    assert settings.model_dir == Path("/srv/ml/model")
    assert settings.code_dir == Path("/srv/ml/model/code")


def test_s21_accelerator_flag_is_exactly_the_string_true():
    assert ServingSettings.from_environ(
        {"SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT": "true"}
    ).accelerator_present
    for value in ("True", "1", ""):
        env = {"SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT": value}
        assert not ServingSettings.from_environ(env).accelerator_present


def test_s26_workers_default_to_one_not_the_cpu_count():
    assert ServingSettings.from_environ({}).workers == 1
    assert ServingSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "4"}).workers == 4


def test_s27_batch_size_is_unset_by_default_and_the_delay_defaults_to_100_ms():
    # Unset: batch-aware handlers get what queued up, others one request at a time (runtime).
    settings = ServingSettings.from_environ({})
    assert (settings.batch_size, settings.max_batch_delay_s) == (None, 0.1)
    assert settings.auto_batch_size == 32
    env = {"SAGEMAKER_TS_BATCH_SIZE": "8", "SAGEMAKER_TS_MAX_BATCH_DELAY": "50"}
    assert (ServingSettings.from_environ(env).batch_size,
            ServingSettings.from_environ(env).max_batch_delay_s) == (8, 0.05)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "auto"),
        ("SAGEMAKER_BIND_TO_PORT", "70000"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "-1"),
        ("SAGEMAKER_TS_BATCH_SIZE", "0"),
        ("SAGEMAKER_BATCH_STRATEGY", "EVERYTHING"),
        ("SMLOCAL_STRICT", "maybe"),
    ],
)
def test_bad_settings_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        ServingSettings.from_environ({name: value})


def test_settings_are_frozen():
    settings = ServingSettings.from_environ({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.workers = 2  # type: ignore[misc]
