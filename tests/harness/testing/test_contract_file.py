"""The contract file: defaults, the checks it turns into, and errors that name the key."""

from __future__ import annotations

import json

import pytest

from harness.testing import ContractFileError, build_checks, load_contract
from harness.testing.contract import parse_contract
from harness.testing.jsonpath import JsonPathError, resolve
from harness.testing.media import UndecodableBody, argmax_rows, close_enough, decode, shape


def test_cases_inherit_the_example_requests_content_type_and_accept(contract_file):
    contract = load_contract(contract_file("""
        request: {json: "x", content_type: application/json; charset=utf-8, accept: text/csv}
        cases:
          - {name: inherits, json: ["a"]}
          - {name: overrides, text: "a", content_type: text/plain, accept: null}
          - {name: no content type, base64: AAE=, content_type: null}
    """))
    inherits, overrides, raw = contract.cases
    assert (inherits.request.body, inherits.request.content_type, inherits.request.accept) == (
        b'["a"]', "application/json; charset=utf-8", "text/csv")
    assert (overrides.request.body, overrides.request.content_type,
            overrides.request.accept) == (b"a", "text/plain", None)
    assert (raw.request.body, raw.request.content_type) == (b"\x00\x01", None)
    assert inherits.expect.status == 200


def test_a_json_body_without_an_example_request_is_sent_as_application_json():
    contract = parse_contract({"cases": [{"name": "a", "json": {"k": 1}}]}, "inline")
    assert contract.cases[0].request.content_type == "application/json"
    assert json.loads(contract.cases[0].request.body) == {"k": 1}


def test_the_project_contract_file_reads(tools):
    contract = load_contract(tools.handlers / "contract.yaml")
    names = [case.name for case in contract.cases]
    assert "the blog's request is served: Somebody just left - guess who." in names
    first = contract.cases[0]
    assert (first.request.body, first.expect.predicted_class) == (
        b'"Somebody just left - guess who."', None)
    assert any(case.expect.predicted_class == (1, 0, 1) for case in contract.cases)


def test_without_a_file_only_s2_and_s4_are_checked():
    assert [check.rules for check in build_checks(parse_contract(None, "none"))] == [
        ("S2",), ("S4",)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cases: [{name: a, expect: {stauts: 200}}]",
         r"cases\[0\].expect: unknown key 'stauts' \(known: status, "),
        ("cases: [{json: 1}]", r"cases\[0\]: every case needs a name"),
        ("cases: [{name: a, json: 1, text: x}]",
         "give one of json, text, base64, not json and text"),
        ("cases: [{name: a, expect: {status: 99}}]",
         r"expected an HTTP status \(100-599\), got 99"),
        ("cases: [{name: a, expect: {json_path: {'0': 1}}}]", "must start with \\$"),
        ("cases: [{name: a, base64: '!!'}]", r"cases\[0\].base64"),
        ("reject: {content_type: {text/plain: four}}", r"reject.content_type\['text/plain'\]"),
        ("accept: text/csv", "accept: expected a list of media types"),
        ("request: [1]", "request: expected a mapping, got list"),
        ("cases: {a: 1}", "cases: expected a list"),
        ("- 1", "expected a mapping, got list"),
        ("key: [unclosed", "is not valid YAML/JSON"),
    ],
)
def test_mistakes_are_reported_with_the_key_that_has_them(contract_file, text, message):
    with pytest.raises(ContractFileError, match=message):
        load_contract(contract_file(text))


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ContractFileError, match=r"cannot read .*nope\.yaml"):
        load_contract(tmp_path / "nope.yaml")


def test_json_path_steps():
    value = {"predictions": [{"label": "ok", "scores": [0.1, 0.9]}], "odd key": 1}
    assert resolve(value, "$.predictions[0].label") == "ok"
    assert resolve(value, "$.predictions[-1].scores[1]") == 0.9
    assert resolve(value, "$['odd key']") == 1
    assert resolve(value, "$") == value
    with pytest.raises(JsonPathError, match=r"\$.predictions has no item \[3\]"):
        resolve(value, "$.predictions[3]")
    with pytest.raises(JsonPathError, match="has no key 'nope'"):
        resolve(value, "$.nope")


def test_s22_bodies_decode_by_content_type():
    assert decode(b"[[1, 2]]", "application/json; charset=utf-8") == [[1, 2]]
    assert decode(b"1.5,-2\n3,4\n", "text/csv") == [[1.5, -2.0], [3.0, 4.0]]
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array([[1.0, 2.0]]), allow_pickle=False)
    assert decode(buffer.getvalue(), "application/x-npy") == [[1.0, 2.0]]
    for body, content_type in [(b"[[1.0, 2.0]]", "text/csv"), (b"nope", "application/json"),
                               (b"[1]", "application/x-npy"), (b"x", "text/plain")]:
        with pytest.raises(UndecodableBody):
            decode(body, content_type)


def test_values_shapes_and_classes():
    assert close_enough([[1.0, 2.0]], [[1.00001, 2]])
    assert not close_enough([[1.0, 2.0]], [[1.1, 2.0]])
    assert not close_enough([1.0], [1.0, 2.0])
    assert shape([[1, 2], [3, 4], [5, 6]]) == [3, 2]
    assert shape([[1], [2, 3]]) is None
    assert argmax_rows([[0.1, 0.9], [2, -1]]) == [1, 0]
    assert argmax_rows([0.3, 0.2, 0.5]) == [2]
