"""Multi-model endpoints (SAGEMAKER_MULTI_MODEL=true): models loaded and unloaded at run time
through /models, each with its own handlers and workers, invoked by name or by the
X-Amzn-SageMaker-Target-Model header (S13), least recently used unloaded past a memory budget."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio

NAMED = """
import os

def model_fn(model_dir):
    return "{name}"

def transform_fn(model, data, content_type, accept, context):
    return f"{{model}} ({{context.model_name}}, pid {{os.getpid()}}): {{data}}"
"""


@pytest.fixture
def models_root(tmp_path: Path, torchscript_model_file: Path) -> Path:
    """/opt/ml/models with two models, each with handlers of its own in code/."""
    root = tmp_path / "models"
    for name in ("cola-a", "cola-b"):
        model = root / name / "model"
        (model / "code").mkdir(parents=True)
        shutil.copy(torchscript_model_file, model / "model.pt")
        (model / "code" / "inference.py").write_text(textwrap.dedent(NAMED.format(name=name)))
    return root


def mme_settings(settings_for, tmp_path: Path, **env: str):
    empty = tmp_path / "no-model"
    empty.mkdir(exist_ok=True)
    return settings_for({"SAGEMAKER_MULTI_MODEL": "true", **env}, model_dir=empty)


async def load(served, name: str, root: Path):
    return await served.client.post(
        "/models", json={"model_name": name, "url": str(root / name / "model")})


async def test_mme_ping_is_200_with_no_model_and_none_is_listed(settings_for, serve, tmp_path):
    async with serve(mme_settings(settings_for, tmp_path)) as served:
        assert await served.ping_status() == 200
        listed = await served.client.get("/models")
    assert listed.json() == {"models": []}


async def test_mme_models_load_list_describe_invoke_and_unload(
    settings_for, serve, tmp_path, models_root
):
    async with serve(mme_settings(settings_for, tmp_path)) as served:
        assert (await load(served, "cola-a", models_root)).status_code == 200
        assert (await load(served, "cola-b", models_root)).status_code == 200
        listed = (await served.client.get("/models")).json()["models"]
        described = await served.client.get("/models/cola-b")
        by_name = await served.client.post("/models/cola-a/invoke", content="hello")
        by_header = await served.client.post(
            "/invocations", content="hi", headers={"X-Amzn-SageMaker-Target-Model": "cola-b"})
        unloaded = await served.client.delete("/models/cola-a")
        after = await served.client.post("/models/cola-a/invoke", content="hello")
        still = await served.client.post("/models/cola-b/invoke", content="there")
        remaining = (await served.client.get("/models")).json()["models"]
    assert [model["modelName"] for model in listed] == ["cola-a", "cola-b"]
    assert listed[0]["modelUrl"] == str(models_root / "cola-a" / "model")
    assert described.json()["modelName"] == "cola-b"
    assert by_name.text.startswith("cola-a (cola-a, pid ")
    assert by_name.text.endswith(": b'hello'")  # no Content-Type: bytes (S10)
    assert by_header.text.startswith("cola-b (cola-b, pid ")
    # Each model has its own worker process.
    assert by_name.text.split("pid ")[1] != by_header.text.split("pid ")[1]
    assert unloaded.status_code == 200
    assert after.status_code == 404
    assert after.json()["message"] == "Model not found: cola-a"
    assert still.status_code == 200
    assert [model["modelName"] for model in remaining] == ["cola-b"]


async def test_mme_errors_load_twice_409_missing_404_no_target_400(
    settings_for, serve, tmp_path, models_root
):
    async with serve(mme_settings(settings_for, tmp_path)) as served:
        await load(served, "cola-a", models_root)
        twice = await load(served, "cola-a", models_root)
        missing = await served.client.get("/models/nope")
        unload_missing = await served.client.delete("/models/nope")
        invoke_missing = await served.client.post(
            "/invocations", content="x", headers={"X-Amzn-SageMaker-Target-Model": "nope"})
        no_target = await served.client.post("/invocations", content="x")
        no_directory = await served.client.post(
            "/models", json={"model_name": "ghost", "url": str(tmp_path / "ghost")})
        not_json = await served.client.post("/models", content="{")
    assert (twice.status_code, twice.json()["message"]) == (409, "Model cola-a is already loaded.")
    assert missing.status_code == 404
    assert unload_missing.status_code == 404
    assert invoke_missing.status_code == 404
    assert no_target.status_code == 400
    assert "X-Amzn-SageMaker-Target-Model" in no_target.json()["message"]
    assert no_directory.status_code == 404
    assert not_json.status_code == 400


async def test_mme_a_model_that_fails_to_load_is_500_and_not_listed(
    settings_for, serve, tmp_path, models_root
):
    (models_root / "cola-a" / "model" / "code" / "inference.py").write_text(
        "def model_fn(model_dir):\n    raise ValueError('no weights here')\n")
    async with serve(mme_settings(settings_for, tmp_path)) as served:
        failed = await load(served, "cola-a", models_root)
        listed = (await served.client.get("/models")).json()["models"]
    assert failed.status_code == 500
    assert "ValueError: no weights here" in failed.json()["message"]
    assert listed == []


async def test_mme_past_the_memory_budget_the_least_recently_used_is_unloaded_and_reloaded(
    settings_for, serve, tmp_path, models_root, caplog
):
    caplog.set_level("INFO", logger="smlocal.serve")
    # A budget smaller than any model: only the most recently used one stays loaded.
    settings = mme_settings(settings_for, tmp_path, SMLOCAL_MULTI_MODEL_MEMORY_MB="1")
    async with serve(settings) as served:
        await load(served, "cola-a", models_root)
        first = await served.client.post("/models/cola-a/invoke", content="1")
        await load(served, "cola-b", models_root)
        after_b = [m["modelName"] for m in (await served.client.get("/models")).json()["models"]]
        again = await served.client.post("/models/cola-a/invoke", content="2")
        after_a = [m["modelName"] for m in (await served.client.get("/models")).json()["models"]]
    assert after_b == ["cola-b"]
    assert again.status_code == 200
    assert again.text.startswith("cola-a")
    assert again.text.split("pid ")[1] != first.text.split("pid ")[1], "loaded again"
    assert after_a == ["cola-a"]
    assert "model cola-a unloaded, least recently used" in caplog.text
    assert "model cola-a was unloaded for memory: loading it again" in caplog.text
