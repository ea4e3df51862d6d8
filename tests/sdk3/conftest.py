"""SDK 3.x tests: run by `.venv-sdk3/bin/pytest tests/sdk3` (`make test` does). The root
conftest fails them in CI, and skips them elsewhere, when the installed SDK is not 3.x
(`@pytest.mark.sdk(3)`) or Docker is missing.

Every job and endpoint lives under the test's own directory, its containers carry compose's
working-dir label (training) or are known by id (serving), and all are removed after: a test
asserts that nothing of its own is left, and that the SDK's `sagemaker-local` network is gone
unless another run still has containers on it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

IMAGE = os.environ.get("SMLOCAL_TEST_IMAGE", "smlocal:latest")
BLOG_SENTENCE = "Somebody just left - guess who."


@pytest.fixture(scope="session")
def smlocal_image() -> str:
    """The image, through the same code path as `smlocal image build` (cheap when cached)."""
    from harness.cli import main

    assert main(["image", "build", "--tag", IMAGE]) == 0
    return IMAGE


@pytest.fixture(scope="session")
def handlers_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "handlers"


@pytest.fixture(scope="session")
def nothing_left() -> object:
    """`nothing_left(root)`: asserts the cleanup of every job and endpoint under `root`."""
    return assert_nothing_left


def assert_nothing_left(root: Path) -> None:
    """No container of a compose project under `root`; the SDK network only if in use."""
    from harness.local_mode.cleanup import NETWORK, containers_under, local_mode_containers

    assert containers_under(root) == []
    networks = subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert NETWORK not in networks or local_mode_containers(include_running=True)


@pytest.fixture(scope="session")
def eager_logits() -> object:
    """`eager_logits(model_dir, sentences)`: the reference every served answer is held to."""
    return _eager_logits


def _eager_logits(model_dir: Path, sentences: list[str]) -> list[list[float]]:
    """The reference: the eager model in this process, with the handlers' tokenization."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(sentences, truncation=True, max_length=64, padding="longest",
                        return_tensors="pt")
    with torch.no_grad():
        logits: list[list[float]] = model(**encoded).logits.tolist()
    return logits
