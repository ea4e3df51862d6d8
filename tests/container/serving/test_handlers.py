"""The user module (S14-S18): where it is found, requirements, hooks, defaults, transform_fn
exclusivity and the context argument; the start-up failure paths leave /ping unhealthy."""

from __future__ import annotations

import logging
import time

import pytest

from container.serving.handlers import TRANSFORM_FN_CONFLICT, bind, resolve_handlers

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]

JSON = {"Content-Type": "application/json"}


async def test_s14_user_module_is_sagemaker_program_imported_from_the_code_dir(
    write_handler, settings_for, serve
):
    write_handler("""
        def model_fn(model_dir):
            return None

        def transform_fn(model, data, content_type, accept):
            return "the wrong module"
    """)
    write_handler("GREETING = 'from a sibling module'\n", name="helpers.py")
    write_handler("""
        from helpers import GREETING

        def model_fn(model_dir):
            return GREETING

        def transform_fn(model, data, content_type, accept):
            return model
    """, name="serve_me.py")
    async with serve(settings_for({"SAGEMAKER_PROGRAM": "serve_me.py"})) as served:
        response = await served.client.post("/invocations", content="x")
    assert response.text == "from a sibling module"


async def test_s14_without_a_user_module_the_defaults_serve_model_pt(settings_for, serve):
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="[[1, 2, 3]]", headers=JSON)
    # y = x @ W.T + b with the fixture's weights.
    assert response.json() == [[1.5, 4.5]]


async def test_s14_smlocal_code_dir_overrides_model_dir_code(
    tmp_path, write_handler, settings_for, serve
):
    write_handler("""
        def model_fn(model_dir):
            return None

        def transform_fn(model, data, content_type, accept):
            return "model_dir/code"
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "inference.py").write_text(
        "def model_fn(model_dir):\n    return None\n\n"
        "def transform_fn(model, data, content_type, accept):\n    return 'override'\n"
    )
    async with serve(settings_for({"SMLOCAL_CODE_DIR": str(elsewhere)})) as served:
        response = await served.client.post("/invocations", content="x")
    assert response.text == "override"


HANDLER_RETURNING_MODEL = """
    def model_fn(model_dir):
        return "loaded"

    def transform_fn(model, data, content_type, accept):
        return model
"""


async def test_s15_requirements_already_satisfied_skip_pip(
    write_handler, settings_for, serve, caplog
):
    caplog.set_level(logging.INFO, logger="smlocal.serve")
    (write_handler(HANDLER_RETURNING_MODEL).parent / "requirements.txt").write_text(
        "# comment\nnumpy>=1  # inline comment\nno-such-package==1; python_version < '3'\n"
    )
    async with serve(settings_for()) as served:
        assert await served.ping_status() == 200
    assert "every requirement is already installed; not running pip" in caplog.text
    assert "requirements installed" not in caplog.text


async def test_s15_requirements_are_installed_before_model_fn(
    write_handler, settings_for, serve, caplog
):
    caplog.set_level(logging.INFO, logger="smlocal.serve")
    # An option only pip understands: pip runs for real, and --no-index keeps it offline.
    (write_handler(HANDLER_RETURNING_MODEL).parent / "requirements.txt").write_text(
        "--no-index\nnumpy\n"
    )
    async with serve(settings_for()) as served:
        assert await served.ping_status() == 200
    assert "-r" in caplog.text and "requirements.txt" in caplog.text
    assert "requirements installed" in caplog.text


async def test_s15_failing_requirements_abort_start_up_with_the_pip_error(
    model_dir, write_handler, settings_for, serve, caplog, monkeypatch
):
    # Real pip against the configured index; bounded so the test cannot hang on the network.
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "15")
    (write_handler("""
        import pathlib

        def model_fn(model_dir):
            pathlib.Path(model_dir, "model_fn_ran").touch()
            return None
    """).parent / "requirements.txt").write_text("smlocal-no-such-package-7c1e9b==0.0.1\n")
    env = {"SMLOCAL_REQUIREMENTS_TIMEOUT": "90"}
    started = time.monotonic()
    async with serve(settings_for(env)) as served:
        ping = await served.client.get("/ping")
        assert (ping.status_code, ping.json()) == (500, {"status": "Unhealthy"})
        invocation = await served.client.post("/invocations", content="x")
        assert invocation.status_code == 503
        assert "pip install" in invocation.json()["message"]
    assert time.monotonic() - started < 90
    assert not (model_dir / "model_fn_ran").exists()
    assert "smlocal-no-such-package-7c1e9b" in caplog.text
    assert "failed with exit code" in caplog.text


async def test_s16_pre_model_fn_and_model_warmup_fn_run_around_model_fn(
    write_handler, settings_for, serve
):
    write_handler("""
        calls = []

        def pre_model_fn(model_dir):
            calls.append("pre_model_fn")

        def model_fn(model_dir):
            calls.append("model_fn")
            return {"warm": False}

        def model_warmup_fn(model_dir, model):
            calls.append("model_warmup_fn")
            model["warm"] = True

        def transform_fn(model, data, content_type, accept):
            return ",".join(calls) + " warm=" + str(model["warm"])
    """)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="x")
    assert response.text == "pre_model_fn,model_fn,model_warmup_fn warm=True"


async def test_s16_missing_functions_fall_back_to_the_defaults(
    write_handler, settings_for, serve
):
    # Only input_fn: the default model_fn loads model.pt, the default predict_fn and
    # output_fn run it and encode the result.
    write_handler("""
        import torch

        def input_fn(data, content_type):
            return torch.tensor([[float(v) for v in data.decode().split()]])
    """)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="1 2 3")
    assert response.json() == [[1.5, 4.5]]


def test_s17_transform_fn_with_input_fn_is_a_value_error():
    class Module:
        @staticmethod
        def transform_fn(model, data, content_type, accept):
            return data

        @staticmethod
        def input_fn(data, content_type):
            return data

    with pytest.raises(ValueError) as raised:
        resolve_handlers(Module(), defaults=None)  # type: ignore[arg-type]
    assert str(raised.value) == TRANSFORM_FN_CONFLICT


async def test_s17_transform_fn_with_input_fn_is_a_startup_error(
    write_handler, settings_for, serve, caplog
):
    write_handler("""
        def transform_fn(model, data, content_type, accept):
            return data

        def output_fn(prediction, accept):
            return prediction
    """)
    async with serve(settings_for()) as served:
        ping = await served.client.get("/ping")
    assert (ping.status_code, ping.json()) == (500, {"status": "Unhealthy"})
    assert (
        "ValueError: Cannot use transform_fn implementation in conjunction with input_fn, "
        "predict_fn, and/or output_fn implementation"
    ) in caplog.text


async def test_s18_context_goes_to_handlers_that_take_one_extra_parameter(
    model_dir, write_handler, settings_for, serve
):
    write_handler("""
        import json

        def model_fn(model_dir, context):
            return {"loaded_with": context.system_properties["model_dir"]}

        def input_fn(data, content_type, context):
            return {"batch_size": context.system_properties["batch_size"]}

        def predict_fn(data, model, context):
            return {**data, **model, "gpu_id": context.system_properties["gpu_id"]}

        def output_fn(prediction, accept):
            return json.dumps(prediction)
    """)
    async with serve(settings_for()) as served:
        response = await served.client.post("/invocations", content="x")
    assert response.json() == {"batch_size": 1, "loaded_with": str(model_dir), "gpu_id": None}


def test_s18_arity_counts_every_parameter_as_the_toolkit_does():
    def with_default(data, content_type, context=None):
        return data

    assert bind("input_fn", with_default).takes_context
    assert not bind("input_fn", lambda data, content_type: data).takes_context
    with pytest.raises(TypeError, match="input_fn takes 4 arguments but 2 were given"):
        bind("input_fn", lambda a, b, c, d: a)


async def test_s18_wrong_arity_is_a_startup_type_error(
    write_handler, settings_for, serve, caplog
):
    write_handler("""
        def model_fn(model_dir):
            return None

        def predict_fn(data):
            return data
    """)
    async with serve(settings_for()) as served:
        assert await served.ping_status() == 500
    assert "TypeError: predict_fn takes 1 arguments but 2 were given" in caplog.text


async def test_s18_model_fn_that_raises_is_a_startup_error(write_handler, settings_for, serve):
    write_handler("""
        def model_fn(model_dir):
            raise FileNotFoundError("no weights in " + model_dir)
    """)
    async with serve(settings_for()) as served:
        assert await served.ping_status() == 500
        assert "FileNotFoundError: no weights in" in served.runtime.failure
