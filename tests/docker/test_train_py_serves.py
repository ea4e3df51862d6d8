"""`handlers/train.py` as the serving module on both images (issue 11 item 5): the blog's
`estimator.deploy()` serves with SAGEMAKER_PROGRAM=train.py, on our image and on the AWS serving
stack (the reference image: sagemaker-inference and TorchServe), which imports the module from
the model's code/ with that directory on sys.path. Same answers as the eager model on both."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.testing.serving_container import start_reference, start_serving_container

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PROGRAM = {"SAGEMAKER_PROGRAM": "train.py"}


def test_s14_our_image_serves_with_train_py(smlocal_image: str, bert_model_dir: Path,
                                            tools: SimpleNamespace) -> None:
    served = start_serving_container(smlocal_image, bert_model_dir, code_dir=tools.handlers,
                                     env=PROGRAM, name_prefix="smlocal-test-trainpy")
    try:
        served.wait_ready(240)
        rows = tools.invoke(served.url, tools.sentences)
    finally:
        served.stop()
    np.testing.assert_allclose(rows, tools.eager_logits(bert_model_dir, tools.sentences),
                               atol=1e-4)


def test_s14_the_aws_serving_stack_serves_with_train_py(reference_image: str,
                                                        bert_model_dir: Path,
                                                        tools: SimpleNamespace) -> None:
    served = start_reference(bert_model_dir, code_dir=tools.handlers, env=PROGRAM,
                             image=reference_image)
    try:
        rows = tools.invoke(served.url, tools.sentences)
        log = served.logs()
    finally:
        served.stop()
    np.testing.assert_allclose(rows, tools.eager_logits(bert_model_dir, tools.sentences),
                               atol=1e-4)
    assert "Traceback" not in log, log[-3000:]
