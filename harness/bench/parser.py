"""The arguments of `smlocal bench`; harness/cli.py adds this parser and nothing else."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.bench.limits import MAX_DURATION_S, MAX_REQUESTS
from harness.errors import CommandError

EXIT_USAGE = 2


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _optional_header(value: str) -> str | None:
    """An empty value leaves the header out (S8, S9)."""
    return value or None


def run(args: argparse.Namespace) -> int:
    from harness.bench.command import BenchOptions, BenchUsageError, parse_concurrency, run_bench

    try:
        options = BenchOptions(
            target=args.target,
            concurrency=parse_concurrency(args.concurrency),
            requests=args.requests,
            duration_s=args.duration,
            warmup=args.warmup,
            body=args.body,
            sentences=Path(args.sentences) if args.sentences else None,
            content_type=args.content_type,
            accept=args.accept,
            out_dir=Path(args.out),
            model_dir=Path(args.model_dir) if args.model_dir else None,
            code_dir=Path(args.code) if args.code else None,
            environ=dict(args.env),
            install_requirements=not args.no_requirements,
            region=args.region,
            wait_s=args.wait,
            verbose=args.verbose,
            client=args.client,
        )
        return run_bench(options, sys.stdout, sys.stderr)
    except BenchUsageError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc


def add_bench_parser(commands: Any) -> None:
    """`commands`: the subparsers action of the `smlocal` parser."""
    bench = commands.add_parser(
        "bench", help="load a target over a sweep of concurrency levels: throughput, "
        "latency percentiles, a chart and the figures as JSON")
    bench.add_argument("--target", required=True, metavar="TARGET",
                       help="asgi (in-process, needs --model-dir), http://HOST:PORT, or "
                       "endpoint:NAME (boto3 credentials and region)")
    bench.add_argument("--concurrency", default="1,4,16", metavar="N,N,...",
                       help="the levels, requests in flight at once (default 1,4,16)")
    budget = bench.add_mutually_exclusive_group()
    budget.add_argument("--requests", type=int, default=200,
                        help=f"measured requests per level (default 200, at most {MAX_REQUESTS})")
    budget.add_argument("--duration", type=float, metavar="SECONDS",
                        help=f"run each level this long instead (at most {MAX_DURATION_S:g} s)")
    bench.add_argument("--warmup", type=int, metavar="N",
                       help="unmeasured requests before each level (default: the level)")
    body = bench.add_mutually_exclusive_group()
    body.add_argument("--body", help="the request body, sent as given (default: the blog's "
                      "sentence as a JSON string)")
    body.add_argument("--sentences", metavar="FILE",
                      help="a text file, one sentence a line: one request each, in turn")
    bench.add_argument("--content-type", type=_optional_header, default="application/json",
                       help="default application/json; '' sends none")
    bench.add_argument("--accept", type=_optional_header, default="application/json",
                       help="default application/json; '' sends none")
    bench.add_argument("--out", default=".smlocal/bench",
                       help="where bench.json and bench.png go (default .smlocal/bench)")
    bench.add_argument("--model-dir", help="asgi: the unpacked model (/opt/ml/model)")
    bench.add_argument("--code", help="asgi: handler directory (default: MODEL_DIR/code)")
    bench.add_argument("-e", "--env", action="append", type=_key_value, default=[],
                       metavar="KEY=VALUE", help="asgi: a serving setting, e.g. "
                       "SAGEMAKER_TS_BATCH_SIZE=8 (repeatable)")
    bench.add_argument("--no-requirements", action="store_true",
                       help="asgi: do not pip-install CODE/requirements.txt first (S15)")
    bench.add_argument("--region", help="endpoint: AWS region (default: boto3's)")
    bench.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                       help="http/endpoint: how long to wait for /ping 200 (default 30)")
    bench.add_argument("--client", choices=("auto", "raw", "httpx"), default="auto",
                       help="http targets: the lean client (raw, a few tens of microseconds of "
                       "CPU per request) or httpx (most of a millisecond); auto: raw for "
                       "http://, httpx for https://")
    bench.add_argument("-v", "--verbose", action="store_true",
                       help="asgi: show the server log")
    bench.set_defaults(handler=run)
