"""The `smlocal trace` archive served by the image (issue 6), with the Elastic Inference flag set
as SDK local mode sets it for accelerator_type="local_sagemaker_notebook" (S21, S28)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


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
    for got, expected in zip(served, tools.eager_logits(bert_model_dir, sentences), strict=True):
        assert got == pytest.approx(expected, abs=1e-4)
    # Stock torch in the image has no EI target: the handler says so and stays on the CPU.
    logs = containers.logs(name)
    assert "TorchScript on the CPU" in logs
    assert "takes no target device" in logs
