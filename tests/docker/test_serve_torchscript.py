"""The `smlocal trace` archive served by the image (issue 6), with the Elastic Inference flag set
as SDK local mode sets it for accelerator_type="local_sagemaker_notebook" (S21, S28)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _eager_logits(model_dir: Path, sentences: list[str]) -> list[list[float]]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(sentences, truncation=True, max_length=64, padding="longest",
                        return_tensors="pt")
    with torch.no_grad():
        logits: list[list[float]] = model(**encoded).logits.tolist()
    return logits


def test_s21_s28_the_container_serves_the_traced_model_on_the_cpu_with_the_ei_flag_set(
    containers, tools, torchscript_model_dir: Path, bert_model_dir: Path
) -> None:
    port = tools.free_port()
    name = containers.start("serve", options=[
        "-p", f"127.0.0.1:{port}:8080", "-v", f"{torchscript_model_dir}:/opt/ml/model:ro",
        "-e", "SAGEMAKER_PROGRAM=inference_torchscript.py",
        "-e", "SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT=true",
    ])
    url = f"http://127.0.0.1:{port}"
    _, statuses = tools.wait_for_ping(url, timeout=180)
    assert statuses[-1] == 200, containers.logs(name)[-3000:]
    sentences = list(tools.sentences)
    served = tools.invoke(url, sentences)
    for got, expected in zip(served, _eager_logits(bert_model_dir, sentences), strict=True):
        assert got == pytest.approx(expected, abs=1e-4)
    # Stock torch in the image has no EI target: the handler says so and stays on the CPU.
    logs = containers.logs(name)
    assert "TorchScript on the CPU" in logs
    assert "takes no target device" in logs
