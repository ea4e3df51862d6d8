"""One suite, three targets: the project's handlers pass it in-process (asgi), over HTTP, and
through the SageMaker runtime API (a local stand-in: the cloud is the one thing faked here), and
the endpoint target turns ModelError back into the container's answer (S25)."""

from __future__ import annotations

import boto3
import httpx
import pytest

from harness.testing import (
    AsgiTarget,
    EndpointTarget,
    HttpTarget,
    Reply,
    TargetUnreachable,
    load_contract,
    run_suite,
)
from harness.testing.endpoint import invoke_parameters, reply_from_description, reply_from_error

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def cola_contract(tmp_path_factory, tools):
    path = tmp_path_factory.mktemp("contract") / "cola.yaml"
    path.write_text(tools.cola_any_model_contract)
    return load_contract(path)


def clients(url: str, region: str):
    options = {"endpoint_url": url, "region_name": region, "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
    return (boto3.client("sagemaker-runtime", **options), boto3.client("sagemaker", **options))


def test_s2_s4_s8_s12_s22_s24_project_handlers_pass_the_suite_in_process(
    bert_model_dir, tools, cola_contract
):
    with AsgiTarget.serving(bert_model_dir, tools.handlers, install_requirements=False) as target:
        report = run_suite(target, cola_contract)
    assert report.passed, report.render()
    assert len(report.results) == 17


def test_s2_s4_s8_s12_s22_s24_s25_project_handlers_pass_over_http_and_through_the_runtime_api(
    bert_model_dir, tools, cola_contract
):
    """The same suite against the app on a real port, then through InvokeEndpoint in front of
    that port; every check gives the same verdict."""
    with tools.serving_over_http(bert_model_dir, tools.handlers) as url:
        with HttpTarget(url) as target:
            over_http = run_suite(target, cola_contract)
        with tools.serve_in_thread(tools.runtime_api({"cola": url}), lifespan="off") as api:
            runtime, control = clients(api, tools.region)
            endpoint = EndpointTarget("cola", runtime_client=runtime, sagemaker_client=control)
            through_api = run_suite(endpoint, cola_contract)
            endpoint.close()
    assert over_http.passed, over_http.render()
    assert through_api.passed, through_api.render()
    assert [r.id for r in through_api.results] == [r.id for r in over_http.results]


def test_s25_model_error_becomes_the_container_status_and_body(tiny_model, tools):
    with tools.serving_over_http(tiny_model()) as url, \
            tools.serve_in_thread(tools.runtime_api({"tiny": url}), lifespan="off") as api:
        runtime, control = clients(api, tools.region)
        endpoint = EndpointTarget("tiny", runtime_client=runtime, sagemaker_client=control)
        direct = HttpTarget(url)
        refused = endpoint.invoke(b"2.0", "text/plain")
        expected = direct.invoke(b"2.0", "text/plain")
        served = endpoint.invoke(b"[1.0]", "application/json", "text/csv")
        too_large = endpoint.invoke(b" " * (tools.max_body + 1), "application/json")
        ping = endpoint.ping()
        direct.close()
    assert (refused.status, refused.body) == (415, expected.body)
    assert refused.text.startswith("unsupported content type 'text/plain'; send JSON\n")
    assert refused.headers["x-smlocal-sagemaker-error"] == "ModelError"
    assert "log-group:/aws/sagemaker/Endpoints/tiny" in refused.headers["x-smlocal-log-stream-arn"]
    assert (served.status, served.content_type, served.body) == (200, "text/csv", b"3.0,-3.0\n")
    assert too_large.status == 413
    assert too_large.text == f"HTTP content length exceeded {tools.max_body} bytes."
    assert ping.status == 200


def test_s13_sagemaker_headers_travel_as_invoke_endpoint_parameters():
    parameters = invoke_parameters("cola", b"x", None, "text/csv",
                                   {"X-Amzn-SageMaker-Custom-Attributes": "trace=1"})
    assert parameters == {"EndpointName": "cola", "Body": b"x", "Accept": "text/csv",
                          "CustomAttributes": "trace=1"}
    from harness.testing import TargetError

    with pytest.raises(TargetError, match="cannot be sent to a SageMaker endpoint"):
        invoke_parameters("cola", b"x", None, None, {"X-Trace": "1"})


def test_s25_reply_from_error_reads_botocore_error_responses():
    model_error = {
        "Error": {"Code": "ModelError", "Message": "Received client error (415) ..."},
        "ResponseMetadata": {"HTTPStatusCode": 424},
        "OriginalStatusCode": 415, "OriginalMessage": "unsupported\ntrace",
    }
    assert reply_from_error(model_error).status == 415
    assert reply_from_error(model_error).body == b"unsupported\ntrace"
    throttled = {"Error": {"Code": "ThrottlingException", "Message": "slow down"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}
    assert (reply_from_error(throttled).status, reply_from_error(throttled).body) == (
        400, b"slow down")


def test_s2_endpoint_health_is_its_status():
    assert reply_from_description({"EndpointStatus": "InService"}).status == 200
    creating = reply_from_description({"EndpointStatus": "Creating"})
    assert creating.status == 500
    assert creating.json()["EndpointStatus"] == "Creating"


def test_an_endpoint_that_does_not_exist_is_unreachable(tiny_model, tools):
    with tools.serve_in_thread(tools.runtime_api({}), lifespan="off") as api:
        runtime, control = clients(api, tools.region)
        endpoint = EndpointTarget("nope", runtime_client=runtime, sagemaker_client=control)
        with pytest.raises(TargetUnreachable, match='endpoint nope does not exist'):
            endpoint.ping()


def test_s2_an_invoke_only_role_takes_the_endpoint_as_healthy(tools):
    with tools.serve_in_thread(tools.runtime_api({}), lifespan="off") as api:
        runtime, control = clients(api, tools.region)
        ping = EndpointTarget("denied-x", runtime_client=runtime, sagemaker_client=control).ping()
    assert ping.status == 200
    assert ping.json()["assumed"] == "DescribeEndpoint was denied"


def test_nothing_listening_is_unreachable(tools):
    with HttpTarget(f"http://127.0.0.1:{tools.free_port()}") as target, \
            pytest.raises(TargetUnreachable, match="cannot connect"):
        target.ping()


def test_a_missing_accept_or_content_type_is_not_sent(tools):
    """S8/S9: None means the header is absent (httpx would send Accept: */* by itself)."""
    seen: list[httpx.Headers] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200)

    with HttpTarget("http://container", transport=httpx.MockTransport(record)) as target:
        reply = target.invoke(b"x")
        target.invoke(b"x", "application/json", "text/csv")
    assert isinstance(reply, Reply)
    assert "accept" not in seen[0] and "content-type" not in seen[0]
    assert (seen[1]["content-type"], seen[1]["accept"]) == ("application/json", "text/csv")
