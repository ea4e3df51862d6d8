"""handlers/inference_torchscript.py on the archive `smlocal trace` makes: the Elastic Inference
flag's routing (S21, S28), the JSON interface of inference.py, and the archive served in-process
with logits equal to the eager model's."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "handlers" / "inference_torchscript.py"
FLAG = "SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT"
SENTENCES = ["Somebody just left - guess who.", "They caused him to become angry.",
             "Him would have been fired.", " ".join(["word"] * 200)]


@pytest.fixture
def handler() -> ModuleType:
    # A fresh module per test: model_fn's choice of target is module state.
    spec = importlib.util.spec_from_file_location("cola_inference_torchscript", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def eager_logits(bert_model_dir) -> torch.Tensor:
    """The eager model's logits for SENTENCES, tokenized as inference.py does."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(bert_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(bert_model_dir)
    encoded = tokenizer(SENTENCES, truncation=True, max_length=64, padding="longest",
                        return_tensors="pt")
    with torch.no_grad():
        logits: torch.Tensor = model(**encoded).logits
    return logits


def _predict(handler: ModuleType, model_dir: Path) -> torch.Tensor:
    model = handler.model_fn(str(model_dir))
    encoded = handler.input_fn(json.dumps(SENTENCES), "application/json")
    logits: torch.Tensor = handler.predict_fn(encoded, model)
    return logits


def test_handler_does_not_import_smlocal():
    imported = [line for line in HANDLER.read_text().splitlines()
                if line.startswith(("import ", "from "))]
    assert not [line for line in imported if "container" in line or "harness" in line]


def test_s21_without_the_flag_runs_on_the_cpu_with_the_real_optimized_execution(
    handler, torchscript_model_dir, eager_logits, monkeypatch, caplog
):
    monkeypatch.delenv(FLAG, raising=False)
    with caplog.at_level(logging.INFO, logger=handler.__name__):
        logits = _predict(handler, torchscript_model_dir)
    assert handler._execution_args == (True,)
    assert [r.getMessage() for r in caplog.records if "TorchScript on" in r.getMessage()] == [
        f"TorchScript on the CPU: optimized_execution(True) ({FLAG}='', no accelerator)"]
    torch.testing.assert_close(logits, eager_logits, atol=1e-4, rtol=0)


def test_s21_s28_the_flag_with_stock_torch_stays_on_the_cpu_and_says_why(
    handler, torchscript_model_dir, eager_logits, monkeypatch, caplog
):
    # Stock torch 2.x: optimized_execution(should_optimize) only (E9).
    monkeypatch.setenv(FLAG, "true")
    with caplog.at_level(logging.INFO, logger=handler.__name__):
        logits = _predict(handler, torchscript_model_dir)
    assert handler._execution_args == (True,)
    lines = [r.getMessage() for r in caplog.records if "TorchScript on" in r.getMessage()]
    assert len(lines) == 1
    assert "TorchScript on the CPU" in lines[0]
    assert "takes no target device" in lines[0]
    torch.testing.assert_close(logits, eager_logits, atol=1e-4, rtol=0)


def test_s21_s28_the_flag_with_an_ei_enabled_torch_targets_eia_0(
    handler, torchscript_model_dir, eager_logits, monkeypatch, caplog
):
    calls: list[tuple[object, ...]] = []

    # A stand-in for the EI build's optimized_execution(should_optimize, device): it records
    # its arguments and runs the block on the CPU, as no accelerator exists here.
    @contextlib.contextmanager
    def ei_optimized_execution(should_optimize, device=None) -> Iterator[None]:
        calls.append((should_optimize, device))
        yield

    monkeypatch.setattr(torch.jit, "optimized_execution", ei_optimized_execution)
    monkeypatch.setenv(FLAG, "true")
    with caplog.at_level(logging.INFO, logger=handler.__name__):
        logits = _predict(handler, torchscript_model_dir)
        handler.predict_fn(handler.input_fn('"Again."', "application/json"),
                           handler.model_fn(str(torchscript_model_dir)))
    assert calls == [(True, {"target_device": "eia:0"})] * 2
    lines = [r.getMessage() for r in caplog.records if "TorchScript on" in r.getMessage()]
    assert lines[0].startswith("TorchScript on Elastic Inference")
    torch.testing.assert_close(logits, eager_logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("value", ["false", "True", "1", ""])
def test_s21_only_the_exact_string_true_is_the_flag(handler, monkeypatch, value):
    monkeypatch.setattr(torch.jit, "optimized_execution", lambda flag, device=None: None)
    monkeypatch.setenv(FLAG, value)
    assert handler.execution_args() == (True,)


def test_s21_target_support_is_read_from_the_signature(handler):
    assert not handler.accepts_target(torch.jit.optimized_execution)
    assert handler.accepts_target(lambda should_optimize, device: None)
    assert handler.accepts_target(lambda *args: None)
    assert not handler.accepts_target(lambda should_optimize, *, device=None: None)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("The cat sat.", "text/plain", 415),
        ('"The cat sat."', None, 415),
        ("not json", "application/json", 400),
        ("[]", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        (b"\xff\xfe", "application/json; charset=utf-8", 400),
    ],
)
def test_bad_requests_get_inference_py_s_status_codes(handler, body, content_type, status):
    with pytest.raises(handler.RequestError) as raised:
        handler.input_fn(body, content_type)
    assert raised.value.status_code == status


def test_model_fn_without_model_pt_says_how_to_make_it(handler, bert_model_dir):
    with pytest.raises(FileNotFoundError, match="smlocal trace"):
        handler.model_fn(str(bert_model_dir))


@pytest.mark.anyio
async def test_the_archive_served_in_process_answers_the_eager_logits(
    torchscript_model_dir, eager_logits, serving_client
):
    async with serving_client(torchscript_model_dir, torchscript_model_dir / "code",
                              {"SAGEMAKER_PROGRAM": "inference_torchscript.py"}) as client:
        many = await client.post("/invocations", json=SENTENCES)
        one = await client.post("/invocations", json=SENTENCES[0])
        unsupported = await client.post("/invocations", content="x",
                                        headers={"Content-Type": "text/plain"})
    assert many.status_code == 200, many.text
    torch.testing.assert_close(torch.tensor(many.json()), eager_logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.tensor(one.json()), eager_logits[:1], atol=1e-4, rtol=0)
    assert unsupported.status_code == 415
