"""Schemathesis against the served OpenAPI document (issue 14 item 3): every operation /openapi.json
describes, called with generated bodies, headers and media types on a live server, answers
without a 500 that no handler raised and without hanging.

The server runs the default handlers in strict mode, where a request the handlers refuse is a
4xx: the 500s left are the model's own errors (a tensor of the wrong shape), which come back as
TorchServe's JSON error naming the handler's exception. A crash in the server itself would be
uvicorn's plain-text "Internal Server Error", an "Exception in ASGI application" in the log, a
dead worker, or a request that never returns.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))
from hostile_server import Server, start_server

# Whatever the server runs into, it must answer each request well within this.
CALL_TIMEOUT_S = 15.0
# Bounded so the module stays within CI's budget (seconds); SMLOCAL_FUZZ_EXAMPLES=2000 for a
# deeper run by hand.
EXAMPLES = int(os.environ.get("SMLOCAL_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
# What strict mode answers for errors it made itself rather than a handler's exception.
NOT_A_HANDLER_ERROR = {"InternalServerException", "Internal Server Error"}


@schemathesis.serializer("text/csv")
def _to_csv(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    rows = value if isinstance(value, list) else [value]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row if isinstance(row, list) else [row])
    return buffer.getvalue().encode()


def _npy_or_raw(value: Any) -> bytes:
    try:
        array = np.array(value)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    except (ValueError, TypeError):
        return json.dumps(value).encode()


@schemathesis.serializer("application/x-npy")
def _to_npy(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    return _npy_or_raw(value)


@schemathesis.serializer("application/x-npz")
def _to_npz(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    return _npy_or_raw(value)  # an .npy where an .npz belongs: the decoder must refuse it


@pytest.fixture(scope="module")
def fuzz_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    torchscript_model_file: Path = request.getfixturevalue("torchscript_model_file")
    base = tmp_path_factory.mktemp("fuzz-openapi")
    (base / "model").mkdir()
    shutil.copy(torchscript_model_file, base / "model" / "model.pt")
    (base / "no-code").mkdir()
    server = start_server("strict", base, base / "no-code", base / "server.log", 5.0)
    yield server
    server.process.terminate()
    server.process.wait(timeout=30)


def _app_openapi_document() -> dict[str, Any]:
    """The document the app serves at /openapi.json (checked against the live one below).

    Loaded at import, from an app that is never started: schemathesis's lazy loading from a
    fixture (schemathesis.pytest.from_fixture) does not run under pytest 9.
    """
    from container.serving.app import create_app
    from container.serving.settings import ServingSettings

    settings = ServingSettings.from_environ({}, model_dir=Path("/nonexistent"))
    return create_app(settings).openapi()


OPENAPI_DOCUMENT = _app_openapi_document()
schema = schemathesis.openapi.from_dict(OPENAPI_DOCUMENT)


def test_S7_the_fuzzed_document_is_the_served_one(fuzz_server: Server) -> None:
    served = httpx.get(fuzz_server.url + "/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(OPENAPI_DOCUMENT))


@schema.parametrize()
@FUZZ
def test_S2_S6_S7_S23_every_documented_operation_answers_without_an_unraised_500(
    case: schemathesis.Case, fuzz_server: Server
) -> None:
    response = case.call(base_url=fuzz_server.url, timeout=CALL_TIMEOUT_S)
    assert fuzz_server.process.poll() is None, fuzz_server.log_tail()
    if response.status_code >= 500:
        try:
            error = response.json()
        except ValueError:
            pytest.fail(f"a 5xx that is not the JSON error shape: {response.text[:300]}")
        assert isinstance(error, dict) and set(error) == {"code", "type", "message"}, error
        assert error["type"] not in NOT_A_HANDLER_ERROR, error
    assert "Exception in ASGI application" not in fuzz_server.log.read_text(errors="replace")


def test_S2_server_is_healthy_after_the_fuzz(fuzz_server: Server) -> None:
    assert fuzz_server.good_request().status_code == 200
    assert "Exception in ASGI application" not in fuzz_server.log.read_text(errors="replace")
