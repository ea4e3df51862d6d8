"""The load generator's own cost: its two HTTP clients against a server that answers at once.

    python -m harness.benchmarks.serving_generator --requests 3000 --concurrency 1,4,16

The server (harness.bench.loopback) runs in its own process and does no work, so the latency
measured is the generator's plus the loopback's, and the generator's CPU time per request
(`time.process_time` of this process over the level) is what it takes from a server under test
on the same machine. Compare the ceiling here with the throughput a benchmark reports: a
server measured near this ceiling is measured by the generator, not by its own speed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness.bench.command import BenchUsageError, parse_concurrency
from harness.bench.drivers import HttpDriver
from harness.bench.load import Budget, run_level
from harness.bench.loopback import LoopbackServer
from harness.bench.rawhttp import RawHttpDriver
from harness.bench.sending import Driver
from harness.bench.stats import LevelStats
from harness.bench.workload import default_requests


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per level")
    parser.add_argument("--concurrency", default="1,4,16")
    args = parser.parse_args(argv)
    try:
        levels = parse_concurrency(args.concurrency)
        budget = Budget(requests=args.requests)
    except (BenchUsageError, ValueError) as exc:
        print(f"serving_generator: {exc}", file=sys.stderr)
        return 2
    requests = default_requests()
    print(f"{args.requests} requests per level (the blog's sentence as JSON) against a "
          "server that answers at once, in its own process")
    print(f"{'client':>6}  {'concurrency':>11}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  "
          f"{'generator CPU us/request':>24}")
    with LoopbackServer() as server:
        drivers: dict[str, Driver] = {"httpx": HttpDriver(server.url),
                                      "raw": RawHttpDriver(server.url)}
        for concurrency in levels:
            for client, driver in drivers.items():
                level = LevelStats.of(run_level(driver, requests, concurrency, budget,
                                                warmup=concurrency))
                latency, cpu_ms = level.latency_ms, level.client_cpu_ms_per_request
                assert latency is not None and cpu_ms is not None, f"failed: {level.outcomes}"
                print(f"{client:>6}  {concurrency:>11}  {level.throughput_rps:8.0f}  "
                      f"{latency.p50:7.2f}  {latency.p99:7.2f}  {cpu_ms * 1000:24.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
