"""Error responses (S23, S24): the DLC's 500 with `message\\ntraceback` by default, the handler's
own status when its exception carries one, JSON 415/406/400 in strict mode."""

from __future__ import annotations

import pytest

from container.serving.errors import (
    InferenceError,
    UnsupportedContentTypeError,
    declared_status,
    handler_error_response,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]

JSON = {"Content-Type": "application/json"}

RAISER = """
class Teapot(Exception):
    status_code = 418

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    if data == "plain":
        raise ValueError("bad things\\nhappened here")
    if data == "teapot":
        raise Teapot("short and stout")
    if data == "declared":
        from container.serving.errors import InferenceError
        raise InferenceError(422, "cannot process this sentence")
    if data == "nonsense-status":
        error = RuntimeError("odd status")
        error.status_code = "418"
        raise error
    return data
"""


async def test_s23_handler_exception_is_500_with_message_then_traceback(
    write_handler, settings_for, serve
):
    write_handler(RAISER)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="plain", headers=JSON)
        assert await served.ping_status() == 200
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("bad things\nhappened here\nTraceback (most recent call last):")
    assert "ValueError: bad things" in response.text


def test_s23_reason_phrase_is_the_message_without_cr_lf():
    try:
        raise ValueError("line one\r\nline two")
    except ValueError as exc:
        error = handler_error_response(exc, "Traceback ...", strict=False)
    assert error.phrase == "line one  line two"
    assert error.body == b"line one\r\nline two\nTraceback ..."


async def test_s23_unsupported_content_type_and_accept_are_500_by_default(settings_for, serve):
    async with serve(settings_for()) as served:
        content_type = await served.client.post(
            "/invocations", content="hi", headers={"Content-Type": "text/plain"}
        )
        accept = await served.client.post(
            "/invocations", content="[[1, 2, 3]]", headers={**JSON, "Accept": "text/html"}
        )
    assert content_type.status_code == 500
    assert content_type.text.startswith("Content type text/plain is not supported")
    assert accept.status_code == 500
    assert accept.text.startswith("Accept text/html is not supported")


async def test_s23_strict_mode_answers_415_406_400_with_json_bodies(settings_for, serve):
    async with serve(settings_for({"SMLOCAL_STRICT": "true"})) as served:
        content_type = await served.client.post(
            "/invocations", content="hi", headers={"Content-Type": "text/plain"}
        )
        accept = await served.client.post(
            "/invocations", content="[[1, 2, 3]]", headers={**JSON, "Accept": "text/html"}
        )
        bad_json = await served.client.post("/invocations", content="[[1, 2", headers=JSON)
        bad_utf8 = await served.client.post("/invocations", content=b"\xff", headers=JSON)
        assert await served.ping_status() == 200
    assert (content_type.status_code, content_type.json()["type"]) == (
        415, "UnsupportedContentTypeError"
    )
    assert (accept.status_code, accept.json()["type"]) == (406, "UnsupportedAcceptError")
    assert bad_json.status_code == 400
    assert "not valid JSON" in bad_json.json()["message"]
    assert bad_utf8.status_code == 400
    assert "Traceback" not in bad_json.text


async def test_s24_inference_error_answers_its_own_status(write_handler, settings_for, serve):
    write_handler(RAISER)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="declared", headers=JSON)
    assert response.status_code == 422
    assert response.text.startswith("cannot process this sentence\nTraceback")


async def test_s24_any_exception_with_a_status_code_attribute_sets_the_status(
    write_handler, settings_for, serve
):
    write_handler(RAISER)
    async with serve(settings_for()) as served:
        teapot = await served.client.post("/invocations", content="teapot", headers=JSON)
        nonsense = await served.client.post(
            "/invocations", content="nonsense-status", headers=JSON
        )
    assert teapot.status_code == 418
    assert teapot.text.startswith("short and stout\n")
    # Not an int in 400-599: ignored, as any other exception.
    assert nonsense.status_code == 500


async def test_s24_strict_mode_keeps_the_declared_status_with_a_json_body(
    write_handler, settings_for, serve
):
    write_handler(RAISER)
    async with serve(settings_for({"SMLOCAL_STRICT": "1"})) as served:
        response = await served.client.post("/invocations", content="declared", headers=JSON)
    assert response.status_code == 422
    assert response.json() == {
        "code": 422, "type": "InferenceError", "message": "cannot process this sentence"
    }


def test_s24_declared_status_reads_valid_error_codes_only():
    assert declared_status(InferenceError(404, "missing")) == 404
    assert declared_status(UnsupportedContentTypeError("x", ())) is None
    for status in (200, 600, True, "500", None):
        error = RuntimeError()
        error.status_code = status  # type: ignore[attr-defined]
        assert declared_status(error) is None
