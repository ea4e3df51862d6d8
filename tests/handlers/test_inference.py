"""handlers/inference.py on a real BERT classifier built from the embedded MiniLM: the functions
on their own, and behind the serving app exactly as an endpoint runs them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"
LONG_SENTENCE = " ".join(["word"] * 200)


@pytest.fixture(scope="session")
def inference() -> ModuleType:
    # Loaded under its own name: the serving tests import other modules called `inference`.
    spec = importlib.util.spec_from_file_location("cola_inference", HANDLERS / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def model(inference: ModuleType, bert_model_dir: Path) -> torch.nn.Module:
    loaded: torch.nn.Module = inference.model_fn(str(bert_model_dir))
    return loaded


def test_handlers_do_not_import_smlocal():
    # It must run unchanged on the AWS images, where smlocal does not exist.
    source = (HANDLERS / "inference.py").read_text()
    imported = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imported if "container" in line or "harness" in line]


def test_model_fn_loads_the_classifier_and_tokenizer_from_model_dir(model):
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 2
    assert not model.training


def test_input_fn_tokenizes_one_sentence_or_a_list_without_padding(inference, model):
    one = inference.input_fn(json.dumps("The cat sat."), "application/json")
    many = inference.input_fn(json.dumps(["Short.", "A much longer sentence than that."]),
                              "application/json")
    assert len(one["input_ids"]) == 1
    # Rows keep their own lengths: predict_fn pads, possibly together with other requests.
    assert len(many["input_ids"]) == 2
    assert len(many["input_ids"][0]) < len(many["input_ids"][1]) < 64


def test_input_fn_truncates_at_64_tokens(inference, model):
    encoded = inference.input_fn(json.dumps([LONG_SENTENCE, "Short."]), "application/json")
    assert len(encoded["input_ids"][0]) == 64


def test_input_fn_accepts_bytes_and_a_charset_parameter(inference, model):
    encoded = inference.input_fn(b'"Bytes work too."', "application/json; charset=utf-8")
    assert len(encoded["input_ids"]) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("The cat sat.", "text/plain", 415),
        ('"The cat sat."', None, 415),
        ("not json", "application/json", 400),
        ("[]", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('{"text": "x"}', "application/json", 400),
        (b"\xff\xfe", "application/json; charset=utf-8", 400),
    ],
)
def test_input_fn_rejects_bad_requests_with_a_status_code(
    inference, model, body, content_type, status
):
    with pytest.raises(inference.RequestError) as raised:
        inference.input_fn(body, content_type)
    assert raised.value.status_code == status
    assert raised.value.message


def test_predict_fn_returns_logits_without_gradients(inference, model):
    sentences = ["One.", "Two sentences here."]
    logits = inference.predict_fn(inference.input_fn(json.dumps(sentences), "application/json"),
                                  model)
    assert logits.shape == (2, 2)
    assert not logits.requires_grad
    reference = model(**inference._tokenizer(sentences, padding=True, return_tensors="pt"))
    torch.testing.assert_close(logits, reference.logits.detach())


def test_s27_predict_batch_fn_gives_each_request_its_rows_as_predict_fn_does(inference, model):
    requests = [["Short."], ["A much longer sentence than the first one.", "Two."],
                [LONG_SENTENCE]]
    inputs = [inference.input_fn(json.dumps(sentences), "application/json")
              for sentences in requests]
    batched = inference.predict_batch_fn(inputs, model)
    assert [tuple(logits.shape) for logits in batched] == [(1, 2), (2, 2), (1, 2)]
    for encoded, logits in zip(inputs, batched, strict=True):
        # Padding to a longer batch changes the float rounding, never more (attention mask).
        torch.testing.assert_close(logits, inference.predict_fn(encoded, model),
                                   atol=1e-5, rtol=1e-4)


@pytest.mark.anyio
async def test_endpoint_answers_logits_whose_argmax_is_the_class(bert_model_dir, serving_client):
    sentences = ["Somebody just left - guess who.", "They caused him to become angry.",
                 "Him would have been fired."]
    async with serving_client(bert_model_dir, HANDLERS) as client:
        one = await client.post("/invocations", json=sentences[0])
        many = await client.post("/invocations", json=sentences)
        unsupported = await client.post(
            "/invocations", content=sentences[0], headers={"Content-Type": "text/plain"}
        )
        malformed = await client.post(
            "/invocations", content="[unclosed", headers={"Content-Type": "application/json"}
        )
        ping = await client.get("/ping")
    assert one.status_code == 200
    assert one.headers["content-type"] == "application/json"
    assert np.array(one.json()).shape == (1, 2)
    # As in the AWS blog: the default output_fn's JSON list of lists, argmax over axis 1.
    classes = np.argmax(many.json(), axis=1)
    assert classes.shape == (3,)
    assert set(classes.tolist()) <= {0, 1}
    assert many.json()[0] == pytest.approx(one.json()[0], abs=1e-4)
    assert unsupported.status_code == 415
    assert unsupported.text.startswith("unsupported content type 'text/plain'")
    assert malformed.status_code == 400
    assert ping.status_code == 200


def test_input_fn_bounds_what_one_request_may_cost(inference, model):
    too_many = json.dumps(["a"] * (inference.MAX_SENTENCES + 1))
    with pytest.raises(inference.RequestError, match="at most 256 sentences") as raised:
        inference.input_fn(too_many, "application/json")
    assert raised.value.status_code == 400
    for body in ("[" * 100_000, "[" + "7" * 5000 + "]"):
        with pytest.raises(inference.RequestError, match="not valid JSON"):
            inference.input_fn(body, "application/json")
    huge = inference.input_fn(json.dumps("word " * 1_000_000), "application/json")
    assert len(huge["input_ids"][0]) == 64
