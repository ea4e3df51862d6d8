"""The handler context (S13, S18): request headers in, custom attributes out."""

from __future__ import annotations

import pytest

from container.serving.context import CUSTOM_ATTRIBUTES, Context, RequestProperties


def context_for(*headers: list[tuple[str, str]]) -> Context:
    context = Context({"model_dir": "/opt/ml/model", "gpu_id": None, "batch_size": 1})
    context.request_processor = [
        RequestProperties(f"id-{n}", request) for n, request in enumerate(headers)
    ]
    return context


def test_s13_headers_are_case_insensitive_per_request_of_the_batch():
    context = context_for(
        [("x-amzn-sagemaker-target-model", "a.tar.gz")],
        [("X-Amzn-SageMaker-Inference-Id", "second")],
    )
    assert context.get_request_header(0, "X-Amzn-SageMaker-Target-Model") == "a.tar.gz"
    assert context.get_request_header(1, "x-amzn-sagemaker-inference-id") == "second"
    context.request_index = 1
    assert context.request_headers == {"x-amzn-sagemaker-inference-id": "second"}
    assert context.get_request_id(1) == "id-1"


def test_s13_custom_attributes_in_and_out():
    context = context_for([(CUSTOM_ATTRIBUTES, "in=1")])
    assert context.custom_attributes == "in=1"
    context.set_custom_attributes("out=2")
    assert context.request_processor[0].response_headers == {CUSTOM_ATTRIBUTES: "out=2"}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("Content-Type", "text/plain", "only X-Amzn-SageMaker-Custom-Attributes"),
        (CUSTOM_ATTRIBUTES, "a" * 1025, "at most 1024"),
        (CUSTOM_ATTRIBUTES, "caf\u00e9", "printable ASCII"),
    ],
)
def test_s13_response_headers_the_cloud_would_drop_are_refused(key, value, message):
    context = context_for([])
    context.request_processor.append(RequestProperties("id", []))
    with pytest.raises(ValueError, match=message):
        context.set_response_header(0, key, value)


def test_s18_context_carries_torchserve_style_system_properties():
    context = context_for([])
    assert set(context.system_properties) >= {"model_dir", "gpu_id", "batch_size"}
    with pytest.raises(IndexError):
        context.get_request_header(3, "accept")
