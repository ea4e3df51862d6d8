"""The load generator: requests in order, the budget, concurrency honoured by each driver."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest

from harness.bench.drivers import EndpointDriver
from harness.bench.load import Budget, drive, run_level
from harness.bench.progress import PlainProgress
from harness.bench.sending import NoAnswer
from harness.bench.stats import LevelStats
from harness.bench.workload import BenchRequest
from harness.testing.endpoint import EndpointTarget

REQUESTS = [BenchRequest(f'"{n}"'.encode(), label=str(n)) for n in range(3)]


def test_requests_cycle_in_order_and_the_count_is_exact():
    sent: list[bytes] = []

    async def send(request: BenchRequest) -> int:
        sent.append(request.body)
        await asyncio.sleep(0)
        return 200

    run = asyncio.run(drive(send, REQUESTS, 1, Budget(requests=7)))
    assert sent == [b'"0"', b'"1"', b'"2"', b'"0"', b'"1"', b'"2"', b'"0"']
    assert [sample.index for sample in run.samples] == list(range(7))


def test_no_answer_is_a_sample_with_its_reason_not_an_exception():
    async def send(request: BenchRequest) -> int:
        if request.label == "1":
            raise NoAnswer("ReadTimeout")
        return 503 if request.label == "2" else 200

    run = asyncio.run(drive(send, REQUESTS, 2, Budget(requests=6)))
    stats = LevelStats.of(run)
    assert stats.outcomes == {"200": 2, "503": 2, "ReadTimeout": 2}
    assert stats.errors == {"503": 2, "ReadTimeout": 2}
    assert stats.successes == 2 and stats.latency_ms is not None and stats.latency_ms.count == 2


def test_concurrency_is_the_number_in_flight():
    in_flight = 0
    most = 0

    async def send(request: BenchRequest) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return 200

    asyncio.run(drive(send, REQUESTS, 5, Budget(requests=40)))
    assert most == 5


@pytest.mark.parametrize(("requests", "duration"), [(None, None), (3, 1.0), (0, None)])
def test_a_budget_is_a_count_or_a_duration(requests, duration):
    with pytest.raises(ValueError):
        Budget(requests=requests, duration_s=duration)


class RuntimeAPI:
    """The AWS cloud's sagemaker-runtime, the one thing stood in for: counts the invocations
    in flight at once on the driver's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0

    def invoke_endpoint(self, **parameters: object) -> dict[str, object]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.01)
        with self.lock:
            self.in_flight -= 1
        return {"Body": io.BytesIO(b"[[0.1, 0.2]]"), "ContentType": "application/json"}


def test_an_endpoint_is_driven_from_as_many_threads_as_the_concurrency():
    runtime = RuntimeAPI()
    target = EndpointTarget("cola-bert", runtime_client=runtime, sagemaker_client=object())
    driver = EndpointDriver(target, region=None, max_concurrency=4)
    run = run_level(driver, REQUESTS, 4, Budget(requests=24))
    assert runtime.most == 4
    assert LevelStats.of(run).outcomes == {"200": 24}


def test_plain_progress_prints_periodic_lines_off_a_terminal():
    stream = io.StringIO()
    progress = PlainProgress(10, "concurrency 4", stream, every_s=0)
    for number in range(3):
        progress.advance(ok=number != 1)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("concurrency 4: 3/10 requests, ")
    assert lines[-1].endswith(" req/s, 1 errors")
