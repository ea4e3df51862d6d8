"""The broken-handler corpus of the contract suite (tests/harness/testing/test_broken_handlers.py)
on both stacks: the smlocal image and the reference image (the AWS serving stack).

Each broken handler fails the same checks on both, except where the smlocal runtime deliberately
differs (docs/fidelity.md): F1 (S4, the 6 MiB cap inside the container) and F2 (S24, a
duck-typed `status_code` honoured), plus F3 (S23, the error's Content-Type) which changes no
verdict. Every differing answer is pinned here, field by field, so a change on either side shows.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

from harness.testing import HttpTarget, load_contract
from harness.testing.compare import BODY, CONTENT_TYPE, STATUS, VERDICT, Comparison, compare
from harness.testing.serving_container import start_serving_container

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


def _handler_sources():
    """tests/harness/conftest.py's tiny handler and contract (a conftest cannot be imported)."""
    spec = importlib.util.spec_from_file_location(
        "smlocal_tests_harness_handlers", ROOT / "tests" / "harness" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TINY_HANDLER, module.TINY_CONTRACT


TINY_HANDLER, TINY_CONTRACT = _handler_sources()

PLAIN_415 = "S24-content-type-text-plain-is-refused-with-415"
MISSING_415 = "S8-S24-no-content-type-is-refused-with-415"
HTML_500 = "S22-S23-accept-text-html-is-refused-with-500"
OVER_413 = "S4-a-body-of-6-mib-1-byte-is-refused-with-413"
MALFORMED_400 = "S24-malformed-json-is-refused-with-400"
CSV = "S12-S22-accept-text-csv-answers-text-csv-with-the-same-values"
NPY = "S12-S22-accept-application-x-npy-answers-application-x-npy-with-the-same-values"

# The differing answers of the unbroken tiny handler: F2 where its RequestError (a plain
# exception with status_code) sets 415/400 only here, F3 on every error, F1 on the 413.
F2_F3 = (frozenset({STATUS, CONTENT_TYPE, VERDICT}), ("F2", "F3"))
F3 = (frozenset({CONTENT_TYPE}), ("F3",))
F1 = (frozenset({STATUS, BODY, VERDICT}), ("F1",))
BASELINE = {PLAIN_415: F2_F3, MISSING_415: F2_F3, HTML_500: F3, OVER_413: F1,
            MALFORMED_400: F2_F3}

# name: (edits of the tiny handler, serving settings, checks failing on ours (as in
# test_broken_handlers.py), differing answers)
CORPUS = {
    "a correct handler": ({}, {}, set(), BASELINE),
    "S24 ValueError where the caller needs 415": (
        {"raise RequestError(415, ": "raise ValueError("}, {}, {PLAIN_415, MISSING_415},
        # Both answer 500 now: only the Content-Type differs on the 415 checks.
        {**BASELINE, PLAIN_415: F3, MISSING_415: F3}),
    "S24 accepting any content type": (
        {'!= "application/json"': "== 'never'"}, {}, {PLAIN_415, MISSING_415},
        # Both serve the text/plain and the missing Content-Type requests (200).
        {HTML_500: F3, OVER_413: F1, MALFORMED_400: F2_F3}),
    "S12 S22 ignoring Accept": (
        {"def predict_fn": "def output_fn(prediction, accept):\n"
                           "    return json.dumps(prediction)\n\n\ndef predict_fn"},
        {}, {CSV, NPY, HTML_500},
        {PLAIN_415: F2_F3, MISSING_415: F2_F3, OVER_413: F1, MALFORMED_400: F2_F3}),
    "S12 pinning its content type": (
        {"def predict_fn": "def output_fn(prediction, accept):\n"
                           "    return json.dumps(prediction), 'application/json'\n\n\n"
                           "def predict_fn"},
        {}, {CSV, NPY, HTML_500},
        {PLAIN_415: F2_F3, MISSING_415: F2_F3, OVER_413: F1, MALFORMED_400: F2_F3}),
    "S9 another default Accept": (
        {}, {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"},
        {"S9-S12-no-accept-answers-in-the-default-accept-application-json",
         "S9-S12-accept-answers-in-the-default-accept-application-json",
         "S11-S12-the-example-request-is-served"},
        # The 6 MiB + 1 request has no Accept: CSV from the reference, JSON 413 from ours.
        {**BASELINE, OVER_413: (frozenset({STATUS, BODY, CONTENT_TYPE, VERDICT}), ("F1",))}),
    "a model that predicts the wrong class": (
        {"[scale * value, -scale * value]": "[-scale * value, scale * value]"}, {},
        {"case-one-value-is-one-row", "case-negative-values-are-class-1"}, BASELINE),
}


def tiny_model(directory: Path, edits: dict[str, str]) -> Path:
    text = textwrap.dedent(TINY_HANDLER)
    for old, new in edits.items():
        assert old in text, f"the edit {old!r} does not apply"
        text = text.replace(old, new)
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "inference.py").write_text(text)
    (directory / "scale.json").write_text(json.dumps({"scale": 3.0}))
    return directory


def compare_images(model_dir: Path, contract_path: Path, env: dict[str, str], smlocal_image: str,
                   reference_image: str) -> Comparison:
    ours = start_serving_container(smlocal_image, model_dir, env=env,
                                   name_prefix="smlocal-test-ours")
    try:
        reference = start_serving_container(reference_image, model_dir, env=env,
                                            name_prefix="smlocal-test-reference")
        try:
            ours.wait_ready(180)
            reference.wait_ready(180)
            with HttpTarget(ours.url) as our_target, HttpTarget(reference.url) as ref_target:
                return compare(our_target, ref_target, load_contract(contract_path))
        finally:
            reference.stop()
    finally:
        ours.stop()


@pytest.mark.parametrize("name", list(CORPUS))
def test_S4_S23_S24_the_corpus_fails_the_same_checks_on_both_but_the_listed_differences(
    name, smlocal_image, reference_image, tmp_path
) -> None:
    edits, env, failing_ours, differing = CORPUS[name]
    contract = tmp_path / "contract.yaml"
    contract.write_text(textwrap.dedent(TINY_CONTRACT))
    comparison = compare_images(tiny_model(tmp_path / "model", edits), contract, env,
                                smlocal_image, reference_image)
    shown = comparison.render()
    assert comparison.failing("ours") == failing_ours, shown
    # The reference fails the same checks, and those of F1 and F2 where they apply.
    f1_f2 = {check for check, (_fields, known) in differing.items()
             if {"F1", "F2"} & set(known)}
    assert comparison.failing("reference") == failing_ours | f1_f2, shown
    assert comparison.differences_by_id() == differing, shown
    assert comparison.agrees, shown
