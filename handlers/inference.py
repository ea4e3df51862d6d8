"""Serving handlers for the CoLA BERT classifier: the same file runs on a SageMaker PyTorch
endpoint and under smlocal.

The model directory holds what train.py saved with save_pretrained: the model and its tokenizer.
The request is one sentence (a JSON string) or a list of sentences; the response, from the
default output_fn, is a JSON list of logit pairs, so `np.argmax(result, axis=1)` is the classes.

Nothing here imports smlocal. A bad request raises RequestError, which carries its HTTP status:
smlocal reads the `status_code` attribute; the AWS images honour only their toolkit's
BaseInferenceToolkitError, so RequestError derives from it where that toolkit is installed, and
the caller sees the same 400/415 in both places.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

logger = logging.getLogger(__name__)

MAX_LENGTH = 64
# Bounds on what one request may cost: 64 tokens never need more characters than this, and a
# list of a million one-letter sentences must not reach the model in one forward.
MAX_SENTENCE_CHARS = 4096
MAX_SENTENCES = 256
JSON_CONTENT_TYPE = "application/json"


def _status_error_base() -> type[Exception]:
    """The SageMaker inference toolkit's error class on the AWS images, else Exception."""
    try:
        errors = importlib.import_module("sagemaker_inference.errors")
    except ImportError:
        return Exception
    base = getattr(errors, "BaseInferenceToolkitError", None)
    return base if isinstance(base, type) and issubclass(base, Exception) else Exception


# A base chosen at import time is opaque to the type checker.
class RequestError(_status_error_base()):  # type: ignore[misc]
    """A request this handler cannot serve; `status_code` becomes the response status."""

    def __init__(self, status_code: int, message: str) -> None:
        # The toolkit reads these three attributes; its own __init__ would set the same ones.
        Exception.__init__(self, message)
        self.status_code = status_code
        self.message = message
        self.phrase = message


# input_fn gets no model argument, so model_fn leaves the tokenizer here.
_tokenizer: Any = None


def model_fn(model_dir: str) -> torch.nn.Module:
    global _tokenizer
    # A local directory: from_pretrained never reaches a hub for it, offline or not.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model: torch.nn.Module = AutoModelForSequenceClassification.from_pretrained(model_dir)
    model.to(device)
    model.eval()
    _tokenizer = AutoTokenizer.from_pretrained(model_dir)
    logger.info("loaded %s from %s on %s", type(model).__name__, model_dir, device)
    return model


def model_warmup_fn(model_dir: str, model: torch.nn.Module) -> None:
    """One forward before the endpoint reports healthy, so the first caller does not pay for
    torch's first-call set-up (the toolkit and smlocal both call this hook after model_fn)."""
    predict_fn(input_fn(json.dumps("Warm up."), JSON_CONTENT_TYPE), model)


def _media_type(content_type: str | None) -> str:
    # Clients often send "application/json; charset=utf-8"; the parameters do not matter here.
    return (content_type or "").split(";", 1)[0].strip().lower()


def _sentences(body: str | bytes) -> list[str]:
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(400, f"the body is not UTF-8 text: {exc}") from exc
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:  # also too deep, or an integer of 5000 digits
        raise RequestError(400, f"the body is not valid JSON: {exc}") from exc
    sentences = [value] if isinstance(value, str) else value
    if (
        not isinstance(sentences, list)
        or not sentences
        or not all(isinstance(sentence, str) for sentence in sentences)
    ):
        raise RequestError(
            400, "send a JSON string (one sentence) or a non-empty JSON list of strings"
        )
    if len(sentences) > MAX_SENTENCES:
        raise RequestError(
            400, f"send at most {MAX_SENTENCES} sentences per request, not {len(sentences)}"
        )
    return [sentence[:MAX_SENTENCE_CHARS] for sentence in sentences]


def input_fn(request_body: str | bytes, request_content_type: str | None) -> Any:
    """One sentence or a list of them, tokenized and truncated at 64 tokens; padding waits for
    predict_fn, which may see several requests' sentences at once."""
    if _media_type(request_content_type) != JSON_CONTENT_TYPE:
        raise RequestError(
            415,
            f"unsupported content type {request_content_type!r}; send {JSON_CONTENT_TYPE}",
        )
    sentences = _sentences(request_body)
    if _tokenizer is None:
        raise RuntimeError("model_fn has not run: no tokenizer")
    return _tokenizer(sentences, truncation=True, max_length=MAX_LENGTH)


def predict_fn(input_data: Any, model: torch.nn.Module) -> torch.Tensor:
    """The logits, one row per sentence: the rows padded to the longest, one forward."""
    batch = _tokenizer.pad(input_data, padding="longest", return_tensors="pt")
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        # Whatever the tokenizer produced (input_ids, attention_mask, token_type_ids if the
        # model family uses them).
        output = model(**{name: tensor.to(device) for name, tensor in batch.items()})
    logits: torch.Tensor = output.logits
    return logits


def predict_batch_fn(inputs: list[Any], model: torch.nn.Module) -> list[torch.Tensor]:
    """Several requests' input_fn results in one forward, each request's rows back in order.

    smlocal calls this with the requests that queued up together; the AWS images do not know
    it and call predict_fn once per request, which gives the same logits.
    """
    merged = {name: [row for encoded in inputs for row in encoded[name]] for name in inputs[0]}
    logits = predict_fn(merged, model)
    return list(torch.split(logits, [len(encoded["input_ids"]) for encoded in inputs]))
