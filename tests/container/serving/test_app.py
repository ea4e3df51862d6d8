"""The HTTP contract (S2-S13) against the app in-process, with real handler modules."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

pytestmark = [
    pytest.mark.anyio,
    # The default model_fn loads TorchScript, deprecated in torch 2.13 but what the DLC loads.
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]

MIB = 1024 * 1024

# Echoes what reached transform_fn, so the tests see S8-S10 as the handler sees them.
ECHO = """
import json

def model_fn(model_dir):
    return "echo-model"

def transform_fn(model, data, content_type, accept):
    text = data if isinstance(data, str) else data.decode("latin-1")
    return json.dumps({"type": type(data).__name__, "content_type": content_type,
                       "accept": accept, "data": text}), "application/json"
"""

# Sleeps for as many seconds as the body says.
SLEEPER = """
import time

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    seconds = data.decode() if isinstance(data, bytes) else data
    time.sleep(float(seconds))
    return "slept " + seconds
"""

JSON = {"Content-Type": "application/json"}


async def echo(client: httpx.AsyncClient, **kwargs: object) -> dict[str, object]:
    response = await client.post("/invocations", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_s2_ping_is_500_unhealthy_while_loading_then_200_healthy(
    model_dir, write_handler, settings_for, serve
):
    write_handler("""
        import pathlib, time

        def model_fn(model_dir):
            go = pathlib.Path(model_dir, "go")
            deadline = time.monotonic() + 30
            while not go.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the test never said go")
                time.sleep(0.01)
            return "loaded"

        def transform_fn(model, data, content_type, accept):
            return model
    """)
    async with serve(settings_for(), wait=False) as served:
        loading = await served.client.get("/ping")
        assert (loading.status_code, loading.json()) == (500, {"status": "Unhealthy"})
        early = await served.client.post("/invocations", content="x")
        assert early.status_code == 503
        assert "still loading" in early.json()["message"]
        (model_dir / "go").touch()
        await asyncio.wait_for(served.runtime.wait_settled(), 30)
        ready = await served.client.get("/ping")
        assert (ready.status_code, ready.json()) == (200, {"status": "Healthy"})
        assert (await served.client.post("/invocations", content="x")).text == "loaded"


async def test_s2_failed_load_keeps_ping_unhealthy_with_the_reason_in_the_log(
    write_handler, settings_for, serve, caplog
):
    write_handler("""
        def model_fn(model_dir):
            raise RuntimeError("the weights are missing")
    """)
    async with serve(settings_for()) as served:
        ping = await served.client.get("/ping")
        assert (ping.status_code, ping.json()) == (500, {"status": "Unhealthy"})
        assert "the weights are missing" in caplog.text
        invocation = await served.client.post("/invocations", content="[1]", headers=JSON)
        assert invocation.status_code == 503
        assert "the weights are missing" in invocation.json()["message"]


async def test_s2_ping_answers_fast_while_a_long_inference_runs(
    write_handler, settings_for, serve
):
    write_handler(SLEEPER)
    async with serve(settings_for()) as served:
        slow = asyncio.create_task(served.client.post("/invocations", content="1.5"))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        ping = await served.client.get("/ping")
        elapsed = time.monotonic() - started
        assert ping.status_code == 200
        # SageMaker's own ping timeout is 2 s (S2); the request still runs.
        assert elapsed < 2.0, f"/ping took {elapsed:.2f}s while a request ran"
        assert not slow.done()
        assert (await slow).text == "slept 1.5"


async def test_s3_request_past_the_timeout_is_an_error_and_the_server_stays_healthy(
    write_handler, settings_for, serve
):
    write_handler(SLEEPER)
    async with serve(settings_for({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "0.4"})) as served:
        started = time.monotonic()
        response = await served.client.post("/invocations", content="1.2")
        assert time.monotonic() - started < 1.0
        assert response.status_code == 500
        assert "SAGEMAKER_MODEL_SERVER_TIMEOUT=0.4s" in response.json()["message"]
        assert await served.ping_status() == 200
        # The late handler still occupies the worker; once it is done, requests flow again.
        await asyncio.sleep(1.0)
        assert (await served.client.post("/invocations", content="0")).text == "slept 0"


async def test_s4_body_of_exactly_6_mib_is_accepted(write_handler, settings_for, serve):
    write_handler("""
        def model_fn(model_dir):
            return None

        def transform_fn(model, data, content_type, accept):
            return str(len(data))
    """)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content=b"x" * (6 * MIB))
        assert (response.status_code, response.text) == (200, str(6 * MIB))


class CountingBody:
    """A streamed body that records how much of it the server pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield b"x" * MIB


async def test_s4_declared_body_over_6_mib_is_413_without_reading_it(settings_for, serve):
    body = CountingBody(chunks=20)
    async with serve(settings_for()) as served:
        response = await served.client.post(
            "/invocations", content=body, headers={"Content-Length": str(20 * MIB)}
        )
    assert response.status_code == 413
    assert response.json()["code"] == 413
    assert body.sent <= 1


async def test_s4_streamed_body_over_6_mib_is_413_once_the_count_passes_the_limit(
    settings_for, serve
):
    body = CountingBody(chunks=20)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content=body)
    assert response.status_code == 413
    assert "6291456" in response.json()["message"]
    assert body.sent <= 8, "the server read far past the limit"


async def test_s4_response_over_6_mib_is_an_error(write_handler, settings_for, serve):
    write_handler(f"""
        def model_fn(model_dir):
            return None

        def transform_fn(model, data, content_type, accept):
            return b"y" * ({6 * MIB} + 1)
    """)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="x")
    assert response.status_code == 500
    assert "6291457 bytes" in response.json()["message"]


async def test_s6_execution_parameters_come_from_the_environment(settings_for, serve):
    env = {
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "4",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "5",
    }
    async with serve(settings_for(env)) as served:
        response = await served.client.get("/execution-parameters")
    assert response.json() == {
        "MaxConcurrentTransforms": 4, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 5,
    }


async def test_s6_execution_parameters_default_to_workers_multi_record_6_mb(settings_for, serve):
    async with serve(settings_for({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}), wait=False) as served:
        response = await served.client.get("/execution-parameters")
        await served.runtime.wait_settled()
    assert response.json() == {
        "MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6,
    }


async def test_s7_unknown_path_is_404_with_torchserve_json_and_wrong_method_405(
    settings_for, serve
):
    async with serve(settings_for(), wait=False) as served:
        missing = await served.client.get("/models")
        wrong_method = await served.client.get("/invocations")
        docs = await served.client.get("/docs")
        await served.runtime.wait_settled()
    assert missing.status_code == 404
    assert missing.json() == {
        "code": 404,
        "type": "ResourceNotFoundException",
        "message": "Requested resource is not found, please refer to API document.",
    }
    assert wrong_method.status_code == 405
    assert wrong_method.json()["type"] == "MethodNotAllowedException"
    assert docs.status_code == 200


async def test_s8_content_type_is_the_first_matching_header_or_none(
    write_handler, settings_for, serve
):
    write_handler(ECHO)
    async with serve(settings_for()) as served:
        absent = await echo(served.client, content=b"raw")
        spelled = await echo(served.client, content=b"1,2", headers=[("ContentType", "text/csv")])
        first = await echo(
            served.client,
            content=b"{}",
            headers=[("Content-type", "application/json"), ("contenttype", "text/csv")],
        )
    assert absent["content_type"] is None
    assert spelled["content_type"] == "text/csv"
    assert first["content_type"] == "application/json"


async def test_s9_missing_or_any_accept_means_the_default_accept(
    write_handler, settings_for, serve
):
    write_handler(ECHO)
    env = {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}
    async with serve(settings_for(env)) as served:
        request = served.client.build_request("POST", "/invocations", content=b"x")
        del request.headers["accept"]
        missing = (await served.client.send(request)).json()
        anything = await echo(served.client, content=b"x", headers={"Accept": "*/*"})
        explicit = await echo(served.client, content=b"x", headers={"Accept": "application/x-npy"})
    assert missing["accept"] == "text/csv"
    assert anything["accept"] == "text/csv"
    assert explicit["accept"] == "application/x-npy"


async def test_s9_default_accept_is_application_json(write_handler, settings_for, serve):
    write_handler(ECHO)
    async with serve(settings_for()) as served:
        anything = await echo(served.client, content=b"x", headers={"Accept": "*/*"})
    assert anything["accept"] == "application/json"


@pytest.mark.parametrize(
    ("content_type", "expected_type"),
    [
        ("application/json", "str"),
        ("text/csv", "str"),
        ("application/json; charset=utf-8", "bytes"),
        ("text/plain", "bytes"),
        ("application/x-npy", "bytes"),
    ],
)
async def test_s10_body_is_str_only_for_exactly_json_or_csv(
    write_handler, settings_for, serve, content_type, expected_type
):
    write_handler(ECHO)
    async with serve(settings_for()) as served:
        seen = await echo(served.client, content=b"1", headers={"Content-Type": content_type})
    assert seen["type"] == expected_type


async def test_s10_invalid_utf8_json_body_is_a_handler_error(write_handler, settings_for, serve):
    write_handler(ECHO)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content=b"\xff\xfe", headers=JSON)
        assert response.status_code == 500
        assert "UnicodeDecodeError" in response.text
        assert await served.ping_status() == 200


async def test_s11_chain_is_input_fn_then_predict_fn_then_output_fn(
    write_handler, settings_for, serve
):
    write_handler("""
        def model_fn(model_dir):
            return "M"

        def input_fn(data, content_type):
            return data + "|input:" + content_type

        def predict_fn(data, model):
            return data + "|predict:" + model

        def output_fn(prediction, accept):
            return prediction + "|output:" + accept
    """)
    async with serve(settings_for()) as served:
        response = await served.client.post(
            "/invocations", content="body", headers={**JSON, "Accept": "text/csv"}
        )
    assert response.text == "body|input:application/json|predict:M|output:text/csv"


async def test_s11_transform_fn_replaces_the_chain(write_handler, settings_for, serve):
    write_handler(ECHO)
    async with serve(settings_for()) as served:
        seen = await echo(served.client, content="[1]", headers=JSON)
    assert seen == {"type": "str", "content_type": "application/json",
                    "accept": "application/json", "data": "[1]"}


async def test_s12_tuple_result_sets_the_content_type_otherwise_the_accept(
    write_handler, settings_for, serve
):
    write_handler("""
        def model_fn(model_dir):
            return None

        def transform_fn(model, data, content_type, accept):
            if data == "tuple":
                return b"<p>hi</p>", "text/html"
            return "plain"
    """)
    async with serve(settings_for()) as served:
        tupled = await served.client.post("/invocations", content="tuple", headers=JSON)
        plain = await served.client.post(
            "/invocations", content="x", headers={**JSON, "Accept": "text/csv"}
        )
    assert (tupled.headers["content-type"], tupled.content) == ("text/html", b"<p>hi</p>")
    # Verbatim: no charset appended.
    assert (plain.headers["content-type"], plain.text) == ("text/csv", "plain")


async def test_s13_context_gives_request_headers_and_sets_custom_attributes(
    write_handler, settings_for, serve
):
    write_handler("""
        import json

        def model_fn(model_dir):
            return None

        def transform_fn(model, data, content_type, accept, context):
            if data == "bad-header":
                context.set_response_header(context.request_index, "X-Other", "1")
            headers = context.request_headers
            context.set_custom_attributes("seen=" + (context.custom_attributes or ""))
            return json.dumps({
                name: headers.get(name.lower())
                for name in ("X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Target-Model",
                             "X-Amzn-SageMaker-Target-Variant")
            })
    """)
    sent = {
        "X-Amzn-SageMaker-Custom-Attributes": "trace=abc",
        "X-Amzn-SageMaker-Inference-Id": "inf-1",
        "X-Amzn-SageMaker-Target-Model": "model-a.tar.gz",
        "X-Amzn-SageMaker-Target-Variant": "blue",
    }
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="x", headers=sent)
        refused = await served.client.post(
            "/invocations", content="bad-header", headers=JSON
        )
    assert response.status_code == 200
    assert response.json() == {
        "X-Amzn-SageMaker-Inference-Id": "inf-1",
        "X-Amzn-SageMaker-Target-Model": "model-a.tar.gz",
        "X-Amzn-SageMaker-Target-Variant": "blue",
    }
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == "seen=trace=abc"
    assert refused.status_code == 500
    assert "only X-Amzn-SageMaker-Custom-Attributes" in refused.text


async def test_s13_strict_mode_refuses_custom_attributes_over_1024_chars(
    write_handler, settings_for, serve
):
    write_handler(ECHO)
    async with serve(settings_for({"SMLOCAL_STRICT": "1"})) as served:
        response = await served.client.post(
            "/invocations", content="x",
            headers={"X-Amzn-SageMaker-Custom-Attributes": "a" * 1025},
        )
    assert response.status_code == 400
    assert "1024" in json.loads(response.text)["message"]


async def test_s3_the_invocations_hot_path_keeps_the_head_limits_and_answers_errors_as_json(
    settings_for, serve, monkeypatch
):
    """POST /invocations skips FastAPI's middleware (ServingApp): the 431 of HeadLimits and a
    JSON 500 for an unexpected error must still be there."""
    async with serve(settings_for()) as served:
        too_many = await served.client.post(
            "/invocations", content='"x"',
            headers={"Content-Type": "application/json",
                     **{f"x-filler-{n}": "y" for n in range(250)}},
        )

        async def broken(invocation):
            raise RuntimeError("the runtime broke")

        monkeypatch.setattr(served.runtime, "invoke", broken)
        failed = await served.client.post("/invocations", content='"x"',
                                          headers={"Content-Type": "application/json"})
        wrong_method = await served.client.put("/invocations", content='"x"')
    assert too_many.status_code == 431
    assert too_many.json()["code"] == 431
    assert failed.status_code == 500
    assert failed.json() == {"code": 500, "type": "InternalServerException",
                             "message": "the server failed to handle the request"}
    assert wrong_method.status_code == 405
