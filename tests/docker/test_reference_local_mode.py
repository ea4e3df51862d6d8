"""The reference image as an image_uri: SDK local mode deploys the project's handlers on the AWS
stack (the SDK's repack puts them under code/ in the model, where the toolkit looks), and docker
compose serves an unpacked model.tar.gz with it."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import httpx
import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"


def _packaged(bert_model_dir: Path, out: Path) -> Path:
    assert main(["package", "--model-dir", str(bert_model_dir), "--code", str(HANDLERS),
                 "-o", str(out)]) == 0
    return out


@pytest.mark.docker
@pytest.mark.sdk
def test_L5_S1_sdk_local_mode_deploys_the_handlers_on_the_reference_image(
    reference_image, bert_model_dir, tools, tmp_path, capsys
) -> None:
    archive = _packaged(bert_model_dir, tmp_path / "model.tar.gz")
    port = tools.free_port()
    root = tmp_path / "local-mode"
    common = ["--root", str(root)]
    assert main(["local-mode", "deploy", "--model-data", str(archive), "--image",
                 reference_image, "--detach", "--port", str(port), *common]) == 0
    try:
        assert main(["local-mode", "predict", "The boy quickly ran to the store.", "--port",
                     str(port), *common]) == 0
        assert "logits: [" in capsys.readouterr().out
    finally:
        assert main(["local-mode", "down", *common]) == 0


@pytest.mark.docker
def test_S1_compose_serves_an_unpacked_model_archive_with_the_reference_image(
    reference_image, compose_project, bert_model_dir, tools, tmp_path
) -> None:
    """The toolkit reads the handlers from /opt/ml/model/code only (S14): compose's handler
    mount at /opt/ml/code is ignored there, the archive's code/ is used."""
    unpacked = tmp_path / "model"
    with tarfile.open(_packaged(bert_model_dir, tmp_path / "model.tar.gz")) as archive:
        archive.extractall(unpacked, filter="data")
    port = tools.free_port()
    project = compose_project({"SMLOCAL_IMAGE": reference_image,
                               "SMLOCAL_MODEL_DIR": str(unpacked),
                               "SMLOCAL_PORT": str(port)})
    project("up", "-d", "serve")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    answer: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(f"{url}/invocations", json=["The boy ran.", "Ran boy the."],
                                timeout=30)
            if answer.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    assert answer is not None and answer.status_code == 200, (
        answer.text if answer is not None else "no answer")
    assert len(answer.json()) == 2
