"""Workers (S26) and server-side batching (S27)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from container.serving.batching import Gather, LoadFollower, PendingInvocation, next_batch
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


BATCH_AWARE = """
import json, time

def model_fn(model_dir):
    return None

def input_fn(data, content_type, context):
    if isinstance(data, bytes):  # S10: only JSON and CSV arrive as text
        data = data.decode()
    if data == "fail":
        raise ValueError("this input is broken")
    return {"data": data, "content_type": content_type, "attributes": context.custom_attributes}

def predict_fn(item, model):
    if item["data"] == "poison":
        raise ValueError("poisoned prediction")
    return dict(item, batch=1)

def predict_batch_fn(items, model):
    if any(item["data"] == "slow" for item in items):
        time.sleep(0.5)
    if any(item["data"] == "poison" for item in items):
        raise ValueError("the batch holds a poisoned input")
    return [dict(item, batch=len(items)) for item in items]

def output_fn(prediction, accept, context):
    context.set_custom_attributes("echo=" + prediction["data"])
    if accept == "text/csv":
        return f"{prediction['data']},{prediction['batch']}", accept
    return json.dumps(prediction), "application/json"
"""
TOGETHER = {"SAGEMAKER_TS_BATCH_SIZE": "4", "SAGEMAKER_TS_MAX_BATCH_DELAY": "3000"}


async def post_all(served, requests):
    return await asyncio.gather(
        *(served.client.post("/invocations", content=body, headers=headers)
          for body, headers in requests)
    )


async def test_s27_predict_batch_fn_gets_the_batch_and_each_request_its_own_answer(
    write_handler, settings_for, serve
):
    write_handler(BATCH_AWARE)
    # Different Content-Types, Accepts and custom attributes in one batch (the toolkit reads
    # only the first request's headers for all of them).
    requests = [
        ("a", {"Content-Type": "application/json", "Accept": "application/json",
               "X-Amzn-SageMaker-Custom-Attributes": "first"}),
        ("b", {"Content-Type": "text/csv", "Accept": "text/csv"}),
        ("c", {"Content-Type": "application/x-npy", "Accept": "application/json",
               "X-Amzn-SageMaker-Custom-Attributes": "third"}),
        ("d", {"Accept": "text/csv"}),
    ]
    async with serve(settings_for(TOGETHER)) as served:
        responses = await post_all(served, requests)
    assert [response.status_code for response in responses] == [200] * 4
    first, second, third, fourth = responses
    assert first.json() == {"data": "a", "content_type": "application/json",
                            "attributes": "first", "batch": 4}
    assert (second.headers["content-type"], second.text) == ("text/csv", "b,4")
    assert third.json()["content_type"] == "application/x-npy"
    assert third.json()["attributes"] == "third"
    assert fourth.text == "d,4"
    assert [response.headers["x-amzn-sagemaker-custom-attributes"] for response in responses] \
        == ["echo=a", "echo=b", "echo=c", "echo=d"]


async def test_s27_a_bad_input_answers_alone_and_the_rest_share_one_predict_call(
    write_handler, settings_for, serve
):
    write_handler(BATCH_AWARE)
    requests = [(body, JSON) for body in ("a", "fail", "b", "c")]
    async with serve(settings_for(TOGETHER)) as served:
        responses = await post_all(served, requests)
    assert [response.status_code for response in responses] == [200, 500, 200, 200]
    assert responses[1].text.startswith("this input is broken\n")
    assert [responses[i].json()["batch"] for i in (0, 2, 3)] == [3, 3, 3]


async def test_s27_a_failing_batch_call_falls_back_to_predict_fn_per_request(
    write_handler, settings_for, serve
):
    write_handler(BATCH_AWARE)
    requests = [(body, JSON) for body in ("a", "poison", "b", "c")]
    async with serve(settings_for(TOGETHER)) as served:
        responses = await post_all(served, requests)
    assert [response.status_code for response in responses] == [200, 500, 200, 200]
    assert responses[1].text.startswith("poisoned prediction\n")
    assert [responses[i].json()["batch"] for i in (0, 2, 3)] == [1, 1, 1]


async def test_s27_by_default_a_lone_request_is_not_delayed_and_queued_ones_go_together(
    write_handler, settings_for, serve
):
    write_handler(BATCH_AWARE)
    async with serve(settings_for()) as served:
        assert served.runtime.batch_size == 32
        assert served.runtime.max_batch_delay_s == 0
        started = time.monotonic()
        alone = await served.client.post("/invocations", content="alone", headers=JSON)
        elapsed = time.monotonic() - started
        # The first request keeps the worker busy for 0.5 s; the others queue meanwhile and
        # are handed over together as soon as it is free.
        first = asyncio.create_task(
            served.client.post("/invocations", content="slow", headers=JSON))
        await asyncio.sleep(0.2)
        rest = await post_all(served, [(body, JSON) for body in "abcd"])
        await first
    assert alone.json()["batch"] == 1
    assert elapsed < 0.5
    assert (await first).json()["batch"] == 1
    assert [response.json()["batch"] for response in rest] == [4, 4, 4, 4]
    assert [response.json()["data"] for response in rest] == list("abcd")


async def test_s27_handlers_without_predict_batch_fn_run_one_request_at_a_time_by_default(
    write_handler, settings_for, serve
):
    write_handler(BATCH_REPORTER)
    async with serve(settings_for()) as served:
        responses = await post_all(served, [(f'"{n}"', JSON) for n in range(3)])
        assert served.runtime.batch_size == 1
    assert {response.json()["batch"] for response in responses} == {1}


def test_s27_load_follower_waits_after_a_full_batch_never_after_a_lone_request():
    follower = LoadFollower(size=32, max_wait_s=0.010)
    assert follower.next_gather() == Gather(32, 0.0, None)  # the first request goes at once
    follower.observe(batch_size=16, run_s=0.036)
    assert follower.next_gather() == Gather(32, pytest.approx(0.0072), 16)  # a fifth of 36 ms
    follower.observe(batch_size=16, run_s=1.0)
    assert follower.next_gather() == Gather(32, 0.010, 16)  # at most max_wait_s
    follower.observe(batch_size=1, run_s=1.0)
    assert follower.next_gather().max_delay_s == 0.0  # a lone client is never held back
    follower.observe(batch_size=64, run_s=0.01)
    assert follower.next_gather().enough == 32


async def test_s27_next_batch_stops_waiting_once_enough_have_queued():
    queue: asyncio.Queue[PendingInvocation] = asyncio.Queue()
    queue.put_nowait(pending("0"))

    async def trickle() -> None:
        for name in "12":
            await asyncio.sleep(0.05)
            queue.put_nowait(pending(name))

    feeder = asyncio.create_task(trickle())
    started = time.monotonic()
    batch = await next_batch(queue, size=32, max_delay_s=5.0, enough=3)
    await feeder
    assert [item.invocation.request_id for item in batch] == ["0", "1", "2"]
    assert time.monotonic() - started < 2.0  # not the 5 s delay: three were enough
    queue.put_nowait(pending("3"))
    started = time.monotonic()
    assert len(await next_batch(queue, size=32, max_delay_s=0.2, enough=3)) == 1
    assert 0.15 < time.monotonic() - started < 2.0  # waited its bounded delay, then went


async def test_s27_after_a_batch_of_n_the_next_n_arrivals_go_together_by_default(
    write_handler, settings_for, serve
):
    """Clients that send again when answered come back a little apart: the worker waits for
    as many as its last batch had (up to a fifth of that batch's run time), so they are not
    split into a batch of one and a batch of the rest."""
    write_handler(BATCH_AWARE)
    async with serve(settings_for({"SMLOCAL_AUTO_BATCH_MAX_WAIT_MS": "5000"})) as served:
        first = asyncio.create_task(
            served.client.post("/invocations", content="slow", headers=JSON))
        await asyncio.sleep(0.2)
        # Queued while "slow" runs: one batch of two that takes 0.5 s (a 0.1 s window after).
        pair = await post_all(served, [("slow", JSON), ("b", JSON)])
        await first
        late_first = asyncio.create_task(
            served.client.post("/invocations", content="c", headers=JSON))
        await asyncio.sleep(0.03)
        late_second = await served.client.post("/invocations", content="d", headers=JSON)
        late = [await late_first, late_second]
    assert [response.json()["batch"] for response in pair] == [2, 2]
    assert [response.json()["batch"] for response in late] == [2, 2]
