"""Soak: a long run of good and bad requests against a server this script starts, and what it
does to the server (issue 14): statuses, memory, open files and latency from start to end.

    python -m harness.benchmarks.soak --model-dir .smlocal/model              # the container
    python -m harness.benchmarks.soak --model-dir .smlocal/model --server host   # smlocal serve

10,000 requests at concurrency 16 by default, in blocks of 1,000: after each block the server's
process tree (a container: everything under its PID 1) is measured. The first block is the
warm-up: RSS after it is the baseline of the growth figure (target < 10%). The requests cycle
through a fixed, seeded mix of good ones and bad ones (malformed JSON, a wrong Content-Type, an
Accept nobody serves, an empty body, one byte over 6 MiB), each with the status the project's
handlers give it under the default settings; any other status is reported. The latency figure
is the p99 of the good requests among the first 1,000 sent and among the last 1,000. Prints
figures, asserts none of the performance ones: exit 0 when every status was the expected one,
1 otherwise, 2 for bad arguments or a server that never serves.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.bench.drivers import http_driver
from harness.bench.limits import MAX_CONCURRENCY, MAX_REQUESTS
from harness.bench.load import Budget, Sample, run_level
from harness.bench.process import TreeFigures, tree_figures
from harness.bench.servers import ContainerServer, HostServer, Server, ServerError
from harness.bench.stats import percentile_ms
from harness.bench.workload import BLOG_SENTENCE, JSON, BenchRequest

# S4: the runtime API's cap; one byte more is refused before it is read.
MAX_BODY_BYTES = 6 * 1024 * 1024
MIX_SEED = 14
GROWTH_TARGET_PERCENT = 10.0
# p99 of the first and of the last this many requests (in the order they were sent).
P99_WINDOW = 1000


def request_mix() -> list[BenchRequest]:
    """One cycle of 100 requests, seeded: 80 good, 20 bad; the expected statuses are those of
    handlers/inference.py with the default (non-strict, S23) settings."""
    sentence = json.dumps(BLOG_SENTENCE).encode()
    kinds: list[tuple[int, BenchRequest]] = [
        (75, BenchRequest(sentence, JSON, JSON, "good: one sentence", 200)),
        (5, BenchRequest(json.dumps(["John gave Mary a book.", "Sat mat the on cat the."])
                         .encode(), JSON, JSON, "good: two sentences", 200)),
        (5, BenchRequest(b'["unterminated', JSON, JSON, "malformed JSON", 400)),
        (5, BenchRequest(b"hello", "text/plain", JSON, "wrong Content-Type", 415)),
        # The default output_fn cannot encode text/html: a handler error, 500 as on AWS (S23).
        (5, BenchRequest(sentence, JSON, "text/html", "unsupported Accept", 500)),
        (4, BenchRequest(b"", JSON, JSON, "empty body", 400)),
        (1, BenchRequest(b"x" * (MAX_BODY_BYTES + 1), JSON, JSON, "6 MiB + 1 byte", 413)),
    ]
    cycle = [request for count, request in kinds for _ in range(count)]
    random.Random(MIX_SEED).shuffle(cycle)
    return cycle


@dataclass(frozen=True)
class Block:
    number: int
    requests: int
    wall_s: float
    p99_ms: float | None
    unexpected: int
    server: TreeFigures

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0


def unexpected(samples: Sequence[Sample]) -> list[Sample]:
    return [sample for sample in samples
            if sample.request.expected_status is not None
            and sample.status != sample.request.expected_status]


def good_p99(samples: Sequence[Sample]) -> float | None:
    """p99 of the good requests (the bad ones are answered in microseconds and would hide
    the figure that matters)."""
    latencies = [sample.latency_s for sample in samples if sample.request.expected_status == 200
                 and sample.status == 200]
    return percentile_ms(latencies, 99) if latencies else None


def start_server(args: argparse.Namespace) -> Server:
    environ = dict(args.env)
    code_dir = Path(args.code) if args.code else None
    if args.server == "host":
        return HostServer(Path(args.model_dir), code_dir, environ)
    return ContainerServer(args.image, Path(args.model_dir), code_dir, environ,
                           name_prefix="smlocal-soak")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="the load generator's HTTP client (raw: lean, see "
                        "harness.bench.rawhttp)")
    parser.add_argument("--server", choices=("container", "host"), default="container")
    parser.add_argument("--image", default="smlocal:latest", help="container: the image")
    parser.add_argument("--model-dir", default=".smlocal/model")
    parser.add_argument("--code", default="handlers", help="handlers, served as model/code")
    parser.add_argument("-e", "--env", action="append", type=_key_value, default=[],
                        metavar="KEY=VALUE", help="a serving setting (repeatable)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--block", type=int, default=1000,
                        help="requests between two measurements of the server")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS:
        parser.error(f"--requests must be 1..{MAX_REQUESTS}")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency must be 1..{MAX_CONCURRENCY}")
    if not 1 <= args.block <= args.requests:
        parser.error("--block must be 1..--requests")
    if not Path(args.model_dir).is_dir():
        parser.error(f"--model-dir {args.model_dir} is not a directory (smlocal train, or "
                     "make demo, writes .smlocal/model)")
    if args.code and not Path(args.code).is_dir():
        parser.error(f"--code {args.code} is not a directory")
    return args


def growth_percent(before: float, after: float) -> float:
    return (after - before) / before * 100.0 if before else 0.0


def run_soak(args: argparse.Namespace) -> tuple[list[Block], list[Sample], float]:
    mix = request_mix()
    with start_server(args) as server:
        print(f"soak: {args.server} server at {server.base_url} ({server.name}); "
              f"{args.requests} requests at concurrency {args.concurrency}, measured every "
              f"{args.block}", flush=True)
        serving_s = server.wait_until_serving(BenchRequest(json.dumps(BLOG_SENTENCE).encode()))
        print(f"serving {serving_s:.1f} s after start", flush=True)
        driver = http_driver(server.base_url, args.client)
        print(f"{'block':>5}  {'requests':>8}  {'req/s':>7}  {'good p99 ms':>11}  "
              f"{'RSS MB':>7}  {'PSS MB':>7}  {'open files':>10}  {'processes':>9}  "
              f"unexpected", flush=True)
        blocks: list[Block] = []
        samples: list[Sample] = []
        sent = 0
        while sent < args.requests:
            size = min(args.block, args.requests - sent)
            run = run_level(driver, mix, args.concurrency, Budget(requests=size),
                            first_index=sent)
            sent += size
            block = Block(number=len(blocks) + 1, requests=size, wall_s=run.wall_s,
                          p99_ms=good_p99(run.samples), unexpected=len(unexpected(run.samples)),
                          server=tree_figures(server.pid))
            blocks.append(block)
            samples.extend(run.samples)
            pss = f"{block.server.pss_mb:7.1f}" if block.server.pss_mb is not None else "      -"
            p99 = f"{block.p99_ms:11.1f}" if block.p99_ms is not None else f"{'-':>11}"
            print(f"{block.number:>5}  {size:>8}  {block.throughput_rps:7.1f}  {p99}  "
                  f"{block.server.rss_mb:7.1f}  {pss}  {block.server.open_files:>10}  "
                  f"{block.server.processes:>9}  {block.unexpected}", flush=True)
    return blocks, samples, serving_s


def summary(blocks: Sequence[Block], samples: Sequence[Sample],
            args: argparse.Namespace) -> dict[str, Any]:
    wrong = Counter((sample.request.label, sample.request.expected_status, sample.outcome)
                    for sample in unexpected(samples))
    by_index = sorted(samples, key=lambda sample: sample.index)
    window = min(P99_WINDOW, len(by_index))
    first, last = by_index[:window], by_index[-window:]
    baseline, end = blocks[0].server, blocks[-1].server
    open_files = [block.server.open_files for block in blocks]
    return {
        "requests": len(samples),
        "concurrency": args.concurrency,
        "server": args.server,
        "outcomes": dict(sorted(Counter(sample.outcome for sample in samples).items())),
        "unexpected": [{"request": label, "expected": expected, "got": got, "count": count}
                       for (label, expected, got), count in sorted(wrong.items(), key=str)],
        "rss_mb_after_warmup": baseline.rss_mb,
        "rss_mb_end": end.rss_mb,
        "rss_growth_percent": growth_percent(baseline.rss_mb, end.rss_mb),
        "pss_mb_after_warmup": baseline.pss_mb,
        "pss_mb_end": end.pss_mb,
        "open_files": open_files,
        "p99_window": window,
        "p99_ms_first": good_p99(first),
        "p99_ms_last": good_p99(last),
        "blocks": [{**asdict(block), "throughput_rps": block.throughput_rps}
                   for block in blocks],
    }


def print_summary(figures: dict[str, Any]) -> None:
    print()
    print(f"outcomes: {', '.join(f'{k}: {v}' for k, v in figures['outcomes'].items())}")
    if figures["unexpected"]:
        for wrong in figures["unexpected"]:
            print(f"UNEXPECTED: {wrong['request']}: expected {wrong['expected']}, got "
                  f"{wrong['got']} ({wrong['count']} times)")
    else:
        print("unexpected statuses: none")
    growth = figures["rss_growth_percent"]
    print(f"RSS after warm-up {figures['rss_mb_after_warmup']:.1f} MB, at the end "
          f"{figures['rss_mb_end']:.1f} MB: {growth:+.1f}% (target < "
          f"{GROWTH_TARGET_PERCENT:g}%)")
    if figures["pss_mb_after_warmup"] is not None and figures["pss_mb_end"] is not None:
        print(f"PSS after warm-up {figures['pss_mb_after_warmup']:.1f} MB, at the end "
              f"{figures['pss_mb_end']:.1f} MB")
    files = figures["open_files"]
    print(f"open files: {files[0]} after warm-up, {min(files)}..{max(files)} over the run, "
          f"{files[-1]} at the end")
    first, last = figures["p99_ms_first"], figures["p99_ms_last"]
    if first is not None and last is not None:
        window = figures["p99_window"]
        print(f"good requests' p99: first {window} requests {first:.1f} ms, last {window} "
              f"{last:.1f} ms "
              f"(x{last / first:.2f})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        blocks, samples, serving_s = run_soak(args)
    except ServerError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    figures = summary(blocks, samples, args)
    figures["start_to_first_invocation_s"] = serving_s
    print_summary(figures)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if figures["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
