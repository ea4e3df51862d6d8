"""Workers as processes (container/serving/pool.py): a handler that crashes the interpreter or
hangs costs its own request, never the endpoint (S2, S3, S26). The worker is killed if need be
and replaced (model_fn runs again), as TorchServe replaces its workers."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}

# model_fn records each load; once a test has created `slow`, loads take `reload_s` seconds, so
# it can watch the endpoint while a replacement is on its way.
FRAGILE = """
import ctypes, os, pathlib, signal, time

def model_fn(model_dir):
    loads = pathlib.Path(model_dir, "loads.txt")
    if pathlib.Path(model_dir, "slow").exists():
        time.sleep({reload_s})
    with open(loads, "a") as log:
        log.write(f"{{os.getpid()}}\\n")
    return None

def transform_fn(model, data, content_type, accept, context):
    if data == "exit":
        os._exit(3)
    if data == "segfault":
        ctypes.string_at(0)
    if data == "oom":
        os.kill(os.getpid(), signal.SIGKILL)
    if data == "hang":
        time.sleep(3600)
    return f"{{data}} from worker {{context.system_properties['worker_index']}} pid {{os.getpid()}}"
"""


def fragile(reload_s: float = 0.0) -> str:
    return FRAGILE.format(reload_s=reload_s)


async def post(served, body: str):
    return await served.client.post("/invocations", content=body, headers=JSON)


async def wait_until_healthy(served, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await served.ping_status() != 200:
        assert time.monotonic() < deadline, "no worker came back"
        await asyncio.sleep(0.05)


def loads(model_dir) -> list[str]:
    return (model_dir / "loads.txt").read_text().split()


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ("exit", "exited with code 3"),
        ("segfault", "killed by SIGSEGV"),
        ("oom", "killed by SIGKILL (a timeout, or the kernel's out-of-memory killer)"),
    ],
)
async def test_s26_a_worker_that_dies_costs_its_request_and_is_replaced(
    model_dir, write_handler, settings_for, serve, body, cause
):
    write_handler(fragile())
    async with serve(settings_for()) as served:
        before = await post(served, "ok")
        died = await post(served, body)
        await wait_until_healthy(served)
        after = await post(served, "ok")
    assert before.status_code == 200
    assert died.status_code == 500
    assert died.json()["message"].startswith("Worker died. the worker process (pid ")
    assert cause in died.json()["message"]
    assert after.status_code == 200
    first, second = loads(model_dir)
    assert before.text.endswith(f"pid {first}")
    assert after.text.endswith(f"pid {second}"), "the replacement ran model_fn and serves"
    assert int(first) != int(second) != os.getpid()


async def test_s3_a_hanging_handler_is_killed_at_the_timeout_and_replaced(
    model_dir, write_handler, settings_for, serve
):
    write_handler(fragile())
    async with serve(settings_for({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1"})) as served:
        started = time.monotonic()
        hung = await post(served, "hang")
        elapsed = time.monotonic() - started
        await wait_until_healthy(served)
        after = await post(served, "ok")
    assert hung.status_code == 500
    assert hung.json()["message"] == (
        "Worker died. The handlers did not answer within SAGEMAKER_MODEL_SERVER_TIMEOUT=1s."
    )
    assert elapsed < 10, "killed at the timeout, not after the handler's hour"
    assert after.status_code == 200
    assert len(loads(model_dir)) == 2


async def test_s2_ping_is_500_only_while_no_worker_can_serve(
    model_dir, write_handler, settings_for, serve
):
    write_handler(fragile(reload_s=1.5))
    async with serve(settings_for()) as served:
        (model_dir / "slow").touch()
        assert (await post(served, "exit")).status_code == 500
        assert await served.ping_status() == 500, "the only worker is being replaced"
        # Requests that arrive meanwhile wait for the replacement instead of failing.
        waiting = await post(served, "patient")
        assert await served.ping_status() == 200
    assert waiting.status_code == 200


async def test_s26_other_workers_keep_serving_while_one_is_replaced(
    model_dir, write_handler, settings_for, serve
):
    write_handler(fragile(reload_s=3))
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    async with serve(settings_for(env)) as served:
        (model_dir / "slow").touch()
        assert (await post(served, "exit")).status_code == 500
        started = time.monotonic()
        during = [await post(served, f"req{n}") for n in range(5)]
        elapsed = time.monotonic() - started
        assert await served.ping_status() == 200
        deadline = time.monotonic() + 30
        while len(loads(model_dir)) < 3:
            assert time.monotonic() < deadline, "the replacement never loaded"
            await asyncio.sleep(0.1)
    assert [response.status_code for response in during] == [200] * 5
    assert elapsed < 2.5, "served by the other worker, not after the replacement"
    assert len({response.text.split(" from ")[1] for response in during}) == 1
