"""The suite catches what would break callers: each deliberately broken handler (or server)
fails exactly the checks that pin the rule it breaks, and nothing else."""

from __future__ import annotations

import json

import pytest

from harness.testing import AsgiTarget, Check, build_checks, load_contract, run_suite
from harness.testing.contract import parse_contract

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TINY_CHECKS = [
    "S2-get-ping-answers-200",
    "S11-S12-the-example-request-is-served",
    "S9-S12-no-accept-answers-in-the-default-accept-application-json",
    "S9-S12-accept-answers-in-the-default-accept-application-json",
    "S12-S22-accept-application-json-answers-application-json-with-the-same-values",
    "S12-S22-accept-text-csv-answers-text-csv-with-the-same-values",
    "S12-S22-accept-application-x-npy-answers-application-x-npy-with-the-same-values",
    "S24-content-type-text-plain-is-refused-with-415",
    "S8-S24-no-content-type-is-refused-with-415",
    "S22-S23-accept-text-html-is-refused-with-500",
    "S4-a-body-of-exactly-6-mib-is-served",
    "S4-a-body-of-6-mib-1-byte-is-refused-with-413",
    "case-one-value-is-one-row",
    "case-negative-values-are-class-1",
    "S24-malformed-json-is-refused-with-400",
]


def failing(report) -> set[str]:
    return {result.id for result in report.failures}


@pytest.fixture
def suite(tiny_model, contract_file):
    """Run the tiny contract against the tiny handler with `replace` edits (and settings)."""

    def run(replace=None, environ=None):
        contract = load_contract(contract_file())
        with AsgiTarget.serving(tiny_model(replace=replace), environ=environ) as target:
            return run_suite(target, contract)

    return run


def test_the_tiny_contract_builds_these_checks(contract_file):
    checks = build_checks(load_contract(contract_file()))
    assert [check.id for check in checks] == TINY_CHECKS


def test_a_correct_handler_passes_every_check(suite):
    report = suite()
    assert report.passed, report.render()
    assert [result.id for result in report.results] == TINY_CHECKS


def test_s24_a_handler_answering_500_for_a_wrong_content_type_fails_the_415_checks(suite):
    # The classic: raising a plain exception (500, S23) where the caller needs 415.
    report = suite(replace={"raise RequestError(415, ": "raise ValueError("})
    assert failing(report) == {"S24-content-type-text-plain-is-refused-with-415",
                               "S8-S24-no-content-type-is-refused-with-415"}
    assert "expected: status 415" in report.render()
    assert "actual:   status 500: unsupported content type 'text/plain'" in report.render()


def test_s24_a_handler_accepting_any_content_type_fails_the_415_checks(suite):
    report = suite(replace={'!= "application/json"': "== 'never'"})
    assert failing(report) == {"S24-content-type-text-plain-is-refused-with-415",
                               "S8-S24-no-content-type-is-refused-with-415"}


def test_s12_s22_a_handler_ignoring_accept_fails_the_accept_checks(suite):
    # Always JSON, whatever the caller asked for: labelled text/csv (S12) but not CSV.
    report = suite(replace={"def predict_fn": "def output_fn(prediction, accept):\n"
                                              "    return json.dumps(prediction)\n\n\n"
                                              "def predict_fn"})
    assert failing(report) == {
        "S12-S22-accept-text-csv-answers-text-csv-with-the-same-values",
        "S12-S22-accept-application-x-npy-answers-application-x-npy-with-the-same-values",
        "S22-S23-accept-text-html-is-refused-with-500",
    }


def test_s12_a_handler_pinning_its_content_type_fails_the_accept_checks(suite):
    # A (body, content_type) tuple sets the Content-Type (S12): here always JSON.
    report = suite(replace={"def predict_fn": "def output_fn(prediction, accept):\n"
                                              "    return json.dumps(prediction), "
                                              "'application/json'\n\n\n"
                                              "def predict_fn"})
    failures = {result.id: result for result in report.failures}
    assert set(failures) == {
        "S12-S22-accept-text-csv-answers-text-csv-with-the-same-values",
        "S12-S22-accept-application-x-npy-answers-application-x-npy-with-the-same-values",
        "S22-S23-accept-text-html-is-refused-with-500",
    }
    csv = failures["S12-S22-accept-text-csv-answers-text-csv-with-the-same-values"]
    assert (csv.expected, csv.actual) == ("Content-Type text/csv", "Content-Type application/json")


def test_s9_a_server_whose_default_accept_differs_fails_the_default_accept_checks(suite):
    report = suite(environ={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    assert failing(report) == {
        "S9-S12-no-accept-answers-in-the-default-accept-application-json",
        "S9-S12-accept-answers-in-the-default-accept-application-json",
        # The example request sends no Accept either.
        "S11-S12-the-example-request-is-served",
    }


def test_s2_a_model_fn_that_fails_fails_ping_and_every_invocation(suite):
    report = suite(replace={"with open(": "raise RuntimeError('no weights')\n    with open("})
    # Only the 413 is decided before the handlers run.
    assert [result.id for result in report.results if result.passed] == [
        "S4-a-body-of-6-mib-1-byte-is-refused-with-413"]
    ping = report.results[0]
    assert (ping.expected, ping.actual) == ("status 200", 'status 500: {"status":"Unhealthy"}')


def test_user_cases_catch_a_model_that_predicts_the_wrong_class(suite):
    report = suite(replace={"[scale * value, -scale * value]": "[-scale * value, scale * value]"})
    assert failing(report) == {"case-one-value-is-one-row", "case-negative-values-are-class-1"}
    row = next(result for result in report.failures if result.id == "case-one-value-is-one-row")
    assert row.expected == "predicted class 0 (argmax of each row)"
    assert row.actual == "predicted class 1 from [[-6.0, 6.0]]"


# --- servers that are not the smlocal runtime --------------------------------------------


def raw_server(*, limit: bool = True, error_body: bool = True):
    """A hand-written serving container (not smlocal's runtime): rows [x, -x] for JSON, 415
    for anything else; `limit` enforces S4, `error_body` says what went wrong."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        headers = dict(scope["headers"])
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/ping":
            status, payload, kind = 200, b'{"status": "Healthy"}', b"application/json"
        elif limit and len(body) > 6 * 1024 * 1024:
            status, payload, kind = 413, b"too large", b"text/plain"
        elif headers.get(b"content-type") != b"application/json":
            status, payload, kind = 415, b"send JSON" if error_body else b"", b"text/plain"
        else:
            value = json.loads(body)
            status, payload, kind = 200, json.dumps([[value, -value]]).encode(), (
                b"application/json")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": payload})

    return app


RAW_CONTRACT = {"request": {"json": 2.0}, "reject": {"content_type": {"text/plain": 415}}}


def run_raw(app):
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def no_lifespan():
        yield

    with AsgiTarget(app, lifespan=no_lifespan) as target:
        return run_suite(target, parse_contract(RAW_CONTRACT, "raw.yaml"))


def test_a_hand_written_server_that_keeps_the_contract_passes():
    report = run_raw(raw_server())
    assert report.passed, report.render()


def test_s4_a_server_without_the_6_mib_limit_fails_the_413_check():
    report = run_raw(raw_server(limit=False))
    assert failing(report) == {"S4-a-body-of-6-mib-1-byte-is-refused-with-413"}
    assert report.failures[0].actual.startswith("status 200")


def test_s23_an_error_without_a_message_fails_the_refusal_check():
    report = run_raw(raw_server(error_body=False))
    assert failing(report) == {"S24-content-type-text-plain-is-refused-with-415"}
    assert report.failures[0].actual == "an empty body"


def test_check_verify_raises_with_expected_and_actual():
    check = Check("GET /ping answers 200", ("S2",), None, ())
    from harness.testing.expectations import Status

    broken = Check(check.name, check.rules, None, (Status(204),))
    with AsgiTarget(raw_server()) as target:
        check.verify(target)
        with pytest.raises(AssertionError, match=r"expected: status 204\nactual:   status 200"):
            broken.verify(target)
