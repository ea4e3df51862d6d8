"""Serving handlers for the TorchScript (traced) CoLA BERT classifier, as the AWS blog's Elastic
Inference deployment serves it, portable to a SageMaker PyTorch endpoint.

The model directory holds `model.pt` (written by `smlocal trace`: BERT traced with
`return_dict=False` on (input_ids, attention_mask)) and the tokenizer files. The JSON interface is
handlers/inference.py's: a JSON string or a list of strings in, a JSON list of logit pairs out.

The execution target is chosen once, in model_fn (S21, S28): Elastic Inference (`eia:0`) when
SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT is "true" *and* the installed torch's
`torch.jit.optimized_execution` takes a target argument (only the EI builds of torch do);
otherwise `optimized_execution(True)` on the CPU. One log line says which and why.

Self-contained on purpose: this file is the only handler in its archive's code/, and nothing here
imports smlocal.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

logger = logging.getLogger(__name__)

MAX_LENGTH = 64
JSON_CONTENT_TYPE = "application/json"
MODEL_FILE = "model.pt"
ACCELERATOR_ENV = "SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT"
EIA_TARGET = {"target_device": "eia:0"}


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


# input_fn gets no model argument, so model_fn leaves the tokenizer here; a fast tokenizer must
# not be called from two threads at once (a server may run handlers on several threads; smlocal's
# workers are processes, but the file must not rely on that), hence the lock.
_tokenizer: Any = None
_tokenizer_lock = threading.Lock()
# The arguments of torch.jit.optimized_execution, decided once by model_fn.
_execution_args: tuple[Any, ...] = (True,)


def _optimized_execution() -> Callable[..., Any]:
    # Looked up at each use, not bound at import: torch does not re-export it in its stubs, and
    # an EI build (or a test's stand-in) replaces the attribute on torch.jit.
    function: Callable[..., Any] = getattr(torch.jit, "optimized_execution")  # noqa: B009
    return function


def accepts_target(optimized_execution: Callable[..., Any]) -> bool:
    """Whether `optimized_execution` takes a second positional (target) argument.

    Decided from the signature, not by calling it and catching TypeError: a TypeError raised for
    another reason must not silently send an EI deployment to the CPU.
    """
    try:
        parameters = inspect.signature(optimized_execution).parameters.values()
    except (TypeError, ValueError):
        # No introspectable signature (a builtin): assume the stock one-argument form.
        return False
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    return variadic or len(positional) >= 2


def execution_args() -> tuple[Any, ...]:
    """optimized_execution's arguments for this process, with a log line saying why."""
    flag = os.environ.get(ACCELERATOR_ENV, "")
    if flag != "true":
        logger.info("TorchScript on the CPU: optimized_execution(True) (%s=%r, no accelerator)",
                    ACCELERATOR_ENV, flag)
        return (True,)
    if not accepts_target(_optimized_execution()):
        logger.warning(
            "TorchScript on the CPU: optimized_execution(True) (%s=true, but torch %s's "
            "optimized_execution takes no target device; only Elastic Inference builds do)",
            ACCELERATOR_ENV, torch.__version__)
        return (True,)
    logger.info("TorchScript on Elastic Inference: optimized_execution(True, %s) (%s=true)",
                EIA_TARGET, ACCELERATOR_ENV)
    return (True, dict(EIA_TARGET))


def model_fn(model_dir: str) -> torch.jit.ScriptModule:
    global _tokenizer, _execution_args
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: make it with `smlocal trace`")
    # On EI the model stays on the CPU side; the accelerator is reached via the target device.
    # torch.jit.load has no annotations.
    model: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
        str(path), map_location="cpu")
    model.eval()
    _tokenizer = AutoTokenizer.from_pretrained(model_dir)
    _execution_args = execution_args()
    logger.info("loaded TorchScript model %s", path)
    return model


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
    except json.JSONDecodeError as exc:
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
    return sentences


def input_fn(request_body: str | bytes, request_content_type: str | None) -> Any:
    """One sentence or a list of them, tokenized: truncated at 64 tokens, padded to the
    longest sentence of the request (the traced graph takes any [batch, length])."""
    if _media_type(request_content_type) != JSON_CONTENT_TYPE:
        raise RequestError(
            415,
            f"unsupported content type {request_content_type!r}; send {JSON_CONTENT_TYPE}",
        )
    sentences = _sentences(request_body)
    if _tokenizer is None:
        raise RuntimeError("model_fn has not run: no tokenizer")
    with _tokenizer_lock:
        return _tokenizer(
            sentences,
            truncation=True,
            max_length=MAX_LENGTH,
            padding="longest",
            return_tensors="pt",
        )


def predict_fn(input_data: Any, model: torch.jit.ScriptModule) -> torch.Tensor:
    """The logits, one row per sentence."""
    # The graph was traced on exactly these two inputs, positionally; token_type_ids (all zero
    # for single sentences) is left to its default, as in the trace.
    input_ids = input_data["input_ids"].cpu()
    attention_mask = input_data["attention_mask"].cpu()
    with torch.no_grad(), _optimized_execution()(*_execution_args):
        output = model(input_ids, attention_mask)
    # return_dict=False: a tuple whose first element is the logits.
    logits: torch.Tensor = output[0]
    return logits
