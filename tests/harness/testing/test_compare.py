"""harness.testing.compare without Docker: two in-process servers of the real runtime stand for
the two stacks, so every field the comparison looks at can be made to differ on purpose."""

from __future__ import annotations

import pytest

from harness.testing import AsgiTarget, Reply, load_contract
from harness.testing.compare import (
    CONTENT_TYPE,
    STATUS,
    VERDICT,
    Answer,
    body_shape,
    compare,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PLAIN_415 = "S24-content-type-text-plain-is-refused-with-415"
MISSING_415 = "S8-S24-no-content-type-is-refused-with-415"
DEFAULT_ACCEPT = {"S9-S12-no-accept-answers-in-the-default-accept-application-json",
                  "S9-S12-accept-answers-in-the-default-accept-application-json",
                  "S11-S12-the-example-request-is-served"}


@pytest.fixture
def run(tiny_model, contract_file):
    def compare_servers(ours=None, reference=None, our_env=None, reference_env=None):
        contract = load_contract(contract_file())
        with AsgiTarget.serving(tiny_model(name="ours", replace=ours), environ=our_env) as a, \
                AsgiTarget.serving(tiny_model(name="reference", replace=reference),
                                   environ=reference_env) as b:
            return compare(a, b, contract)

    return compare_servers


def test_the_same_server_twice_answers_alike_on_every_check(run) -> None:
    comparison = run()
    assert comparison.differing == ()
    assert comparison.agrees
    assert "0 differ unexpectedly" in comparison.render()


def test_an_unlisted_difference_is_unexpected_and_shown_case_by_case(run) -> None:
    comparison = run(reference_env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    assert not comparison.agrees
    unexpected = {case.check.id for case in comparison.unexpected}
    assert unexpected >= DEFAULT_ACCEPT
    example = next(case for case in comparison.unexpected
                   if case.check.id == "S11-S12-the-example-request-is-served")
    assert example.differences == {CONTENT_TYPE, VERDICT}
    assert example.ours_answer.media_type == "application/json"
    assert example.reference_answer.media_type == "text/csv"
    shown = comparison.render()
    assert "DIFFERS" in shown and "reference:  200 text/csv, array [1, 2]" in shown


def test_F2_a_500_with_the_same_message_where_ours_honours_status_code_is_known(run) -> None:
    # The reference stand-in raises a plain exception with the same message: what the AWS
    # toolkit does with a status_code it does not honour.
    comparison = run(reference={"raise RequestError(415, ": "raise ValueError("})
    assert comparison.agrees, comparison.render()
    assert comparison.differences_by_id() == {
        PLAIN_415: (frozenset({STATUS, VERDICT}), ("F2",)),
        MISSING_415: (frozenset({STATUS, VERDICT}), ("F2",)),
    }
    assert comparison.failing("reference") == {PLAIN_415, MISSING_415}
    assert comparison.failing("ours") == set()


def test_a_difference_a_listed_one_only_partly_explains_is_unexpected(run) -> None:
    # Status 500 on the other side but another message: not F2.
    comparison = run(reference={
        "raise RequestError(415, f\"unsupported": "raise ValueError(f\"refused"})
    assert not comparison.agrees
    assert {case.check.id for case in comparison.unexpected} == {PLAIN_415, MISSING_415}


@pytest.mark.parametrize(("reply", "shape"), [
    (Reply(200, {"content-type": "application/json"}, b"[[1.0, 2.0]]"), "array [1, 2]"),
    (Reply(200, {"content-type": "text/csv"}, b"1.0,2.0\n3.0,4.0\n"), "array [2, 2]"),
    (Reply(200, {"content-type": "application/json"}, b'{\n  "status": "Healthy"\n}'),
     "JSON object {status}"),
    (Reply(500, {}, b"boom\nTraceback (most recent call last):"), "text"),
    (Reply(404, {}, b'{"code": 404, "type": "x", "message": "y"}'),
     "JSON object {code, message, type}"),
    (Reply(500, {}, b""), "empty"),
])
def test_body_shape_names_what_the_body_is(reply, shape) -> None:
    assert body_shape(reply) == shape


def test_an_answer_keeps_the_first_line_of_an_error() -> None:
    answer = Answer.of(Reply(415, {"content-type": "text/plain; charset=utf-8"},
                             b"send JSON\nTraceback (most recent call last):\n  ..."))
    assert (answer.status, answer.media_type, answer.body, answer.message) == (
        415, "text/plain", "text", "send JSON")
    assert answer.describe() == "415 text/plain, text: send JSON"


@pytest.mark.parametrize(("args", "message"), [
    ([], "--compare needs --model-dir"),
    (["--model-dir", "/no/such/dir"], "model directory /no/such/dir does not exist"),
    (["--model-dir", ".", "--env", "NOEQUALS"], "--env 'NOEQUALS': expected KEY=VALUE"),
])
def test_compare_usage_errors_exit_2_with_one_line(args, message, capsys) -> None:
    from harness.cli import main

    assert main(["contract", "--compare", *args]) == 2
    assert message in capsys.readouterr().err


def test_compare_and_target_exclude_each_other(capsys) -> None:
    from harness.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["contract", "--compare", "--target", "asgi"])
    assert exited.value.code == 2
    assert "not allowed with argument --compare" in capsys.readouterr().err
