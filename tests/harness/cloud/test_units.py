"""Pure pieces of smlocal cloud: image mapping (C18), channel key layout, the operation table,
the wire encoding (C14)."""

from __future__ import annotations

import datetime
import json

import pytest

from harness.cloud.errors import ApiError
from harness.cloud.images import ImageUnavailable, resolve_image
from harness.cloud.operations import OperationTable
from harness.cloud.protocol import compact, encode
from harness.cloud.training import relative_key


@pytest.mark.parametrize("uri", [
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:1.3.1-gpu-py3",
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:1.3.1-cpu-py3",
    "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:2.6.0-cpu-py312",
])
def test_C18_aws_pytorch_images_run_as_the_local_image(uri: str) -> None:
    assert resolve_image(uri, "smlocal:latest", lambda _name: False) == "smlocal:latest"


def test_C18_local_tags_run_as_themselves_and_unknown_images_are_refused() -> None:
    assert resolve_image("mine:1", "smlocal:latest", lambda name: name == "mine:1") == "mine:1"
    with pytest.raises(ImageUnavailable, match="never pulls"):
        resolve_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1", "smlocal:latest",
                      lambda _name: False)


@pytest.mark.parametrize(("prefix", "key", "expected"), [
    ("data/train", "data/train/train.csv", "train.csv"),
    ("data/train/", "data/train/sub/a.csv", "sub/a.csv"),
    ("data/train.csv", "data/train.csv", "train.csv"),
    ("data/train", "data/training.csv", "training.csv"),
    ("", "top.csv", "top.csv"),
])
def test_s3_prefix_channels_keep_the_layout_below_the_prefix(prefix: str, key: str,
                                                             expected: str) -> None:
    assert relative_key(prefix, key) == expected


def test_the_operation_table_takes_only_sagemaker_operations() -> None:
    table = OperationTable()
    table.register("ListEndpoints", lambda params: {"Endpoints": []})
    assert list(table) == ["ListEndpoints"]
    with pytest.raises(ValueError, match="not a SageMaker operation"):
        table.register("ListBuckets", lambda params: {})
    with pytest.raises(ApiError, match=r"does not implement SageMaker\.DescribeEndpoint"):
        table.handler("DescribeEndpoint")


def test_C14_absent_and_empty_members_are_left_out() -> None:
    stamp = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    body = {"A": None, "VpcConfig": {}, "Nested": {"Empty": {}, "Keep": 1},
            "List": [{"X": None, "Y": 2}], "When": stamp}
    assert compact(body) == {"Nested": {"Keep": 1}, "List": [{"Y": 2}], "When": stamp}
    assert json.loads(encode(body))["When"] == stamp.timestamp()


def test_C18_endpoints_run_the_reference_image_when_asked() -> None:
    from harness.cloud.settings import REFERENCE_IMAGE, CloudSettings
    from harness.reference_image import REFERENCE_TAG

    assert REFERENCE_IMAGE == REFERENCE_TAG  # one name for `smlocal image build --reference`
    default = CloudSettings.from_environ({})
    assert default.serving_image == default.image == "smlocal:latest"
    assert CloudSettings.from_environ({}, serving_image="reference").serving_image == (
        REFERENCE_TAG)
    by_env = CloudSettings.from_environ({"SMLOCAL_CLOUD_SERVING_IMAGE": "reference"})
    assert by_env.serving_image == REFERENCE_TAG and by_env.image == "smlocal:latest"


def test_C9_multi_model_targets_have_stable_names_under_the_prefix() -> None:
    from harness.cloud.multi_model import container_model_name, target_uri

    assert target_uri("s3://b/mme/", "a.tar.gz") == target_uri("s3://b/mme", "a.tar.gz") == (
        "s3://b/mme/a.tar.gz")
    name = container_model_name("dir/a b.tar.gz")
    assert name == container_model_name("dir/a b.tar.gz") != container_model_name("a.tar.gz")
    assert name.isalnum()
