"""Workers (S26) and server-side batching (S27)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from container.serving.batching import PendingInvocation, next_batch
from container.serving.invocation import Invocation

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}

BATCH_REPORTER = """
import json

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept, context):
    if data == "fail":
        raise ValueError("this one request is broken")
    return json.dumps({"data": data, "batch": len(context.request_processor),
                       "index": context.request_index})
"""


async def test_s26_each_worker_runs_model_fn_once(model_dir, write_handler, settings_for, serve):
    write_handler("""
        import os, pathlib

        def model_fn(model_dir):
            with open(pathlib.Path(model_dir, "loads.txt"), "a") as log:
                log.write(f"{os.getpid()}\\n")
            return object()

        def transform_fn(model, data, content_type, accept, context):
            return str(context.system_properties["worker_index"])
    """)
    async with serve(settings_for({"SAGEMAKER_MODEL_SERVER_WORKERS": "3"})) as served:
        assert await served.ping_status() == 200
        pids = {slot.worker.pid for slot in served.runtime.slots}
    loads = (model_dir / "loads.txt").read_text().split()
    assert len(loads) == 3
    assert {int(pid) for pid in loads} == pids, "each worker loads once, in its own process"
    assert os.getpid() not in pids


async def test_s26_workers_serve_requests_in_parallel(model_dir, write_handler, settings_for,
                                                     serve):
    # Each request waits for the other: they can only both pass if two workers run them at the
    # same time; one after the other, the first gives up after its timeout.
    write_handler("""
        import pathlib, time

        def model_fn(model_dir):
            return pathlib.Path(model_dir)

        def transform_fn(model, data, content_type, accept, context):
            index = context.system_properties["worker_index"]
            (model / f"arrived-{index}").touch()
            deadline = time.monotonic() + 10
            while not (model / f"arrived-{1 - index}").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the other worker never ran")
                time.sleep(0.01)
            return str(index)
    """)
    async with serve(settings_for({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})) as served:
        responses = await asyncio.gather(
            *(served.client.post("/invocations", content="x") for _ in range(2))
        )
    assert [response.status_code for response in responses] == [200, 200]
    assert sorted(response.text for response in responses) == ["0", "1"]


async def test_s27_requests_arriving_together_are_handed_over_as_one_batch(
    write_handler, settings_for, serve
):
    write_handler(BATCH_REPORTER)
    env = {"SAGEMAKER_TS_BATCH_SIZE": "3", "SAGEMAKER_TS_MAX_BATCH_DELAY": "2000"}
    async with serve(settings_for(env)) as served:
        responses = await asyncio.gather(
            *(served.client.post("/invocations", content=f'"{n}"', headers=JSON)
              for n in range(3))
        )
    results = [response.json() for response in responses]
    # Each caller gets the answer to its own request.
    assert [result["data"] for result in results] == ['"0"', '"1"', '"2"']
    assert {result["batch"] for result in results} == {3}
    assert sorted(result["index"] for result in results) == [0, 1, 2]


async def test_s27_one_failing_request_does_not_fail_the_others(
    write_handler, settings_for, serve
):
    write_handler(BATCH_REPORTER)
    env = {"SAGEMAKER_TS_BATCH_SIZE": "3", "SAGEMAKER_TS_MAX_BATCH_DELAY": "2000"}
    async with serve(settings_for(env)) as served:
        responses = await asyncio.gather(
            *(served.client.post("/invocations", content=body, headers=JSON)
              for body in ("first", "fail", "last"))
        )
    assert [response.status_code for response in responses] == [200, 500, 200]
    assert responses[1].text.startswith("this one request is broken\n")
    assert [responses[0].json()["batch"], responses[2].json()["data"]] == [3, "last"]


async def test_s27_a_lone_request_waits_at_most_the_max_batch_delay(
    write_handler, settings_for, serve
):
    write_handler(BATCH_REPORTER)
    env = {"SAGEMAKER_TS_BATCH_SIZE": "8", "SAGEMAKER_TS_MAX_BATCH_DELAY": "300"}
    async with serve(settings_for(env)) as served:
        started = time.monotonic()
        response = await served.client.post("/invocations", content="alone", headers=JSON)
        elapsed = time.monotonic() - started
    assert response.json()["batch"] == 1
    assert 0.25 <= elapsed < 1.5


def pending(name: str) -> PendingInvocation:
    invocation = Invocation(name, b"", None, "application/json", ())
    return PendingInvocation(invocation, asyncio.get_running_loop().create_future())


async def test_s27_next_batch_takes_up_to_size_and_skips_abandoned_requests():
    queue: asyncio.Queue[PendingInvocation] = asyncio.Queue()
    items = [pending(str(n)) for n in range(5)]
    items[1].future.cancel()  # its caller timed out while it waited
    for item in items:
        queue.put_nowait(item)
    first = await next_batch(queue, size=3, max_delay_s=10.0)
    assert [item.invocation.request_id for item in first] == ["0", "2", "3"]
    started = time.monotonic()
    second = await next_batch(queue, size=3, max_delay_s=0.1)
    assert [item.invocation.request_id for item in second] == ["4"]
    assert time.monotonic() - started < 1.0
