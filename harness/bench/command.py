"""`smlocal bench`: open a target as the contract suite does, sweep the concurrency levels, print
a line per level and the table, write the JSON figures and the chart. Exit 0 once the sweep ran
(errors are figures, counted by status), 2 when it cannot run (bad arguments, nothing answering,
a model that fails to load)."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.bench.drivers import Client, driver_for
from harness.bench.limits import MAX_CONCURRENCY, MAX_REQUESTS
from harness.bench.load import Budget, Sample, run_level
from harness.bench.progress import Progress, open_progress
from harness.bench.report import SweepReport, render_table, write_chart, write_json
from harness.bench.stats import LevelStats, is_success
from harness.bench.workload import (
    BLOG_SENTENCE,
    BenchRequest,
    WorkloadError,
    body_request,
    default_requests,
    read_sentences,
    sentence_requests,
)
from harness.testing.asgi import AsgiTarget
from harness.testing.command import captured_server_log, wait_until_healthy
from harness.testing.target import TargetError, TargetUnreachable
from harness.testing.targets import AnyTarget, TargetSpecError, open_target

JSON_NAME = "bench.json"
CHART_NAME = "bench.png"


class BenchUsageError(Exception):
    """The sweep cannot run (exit 2): a bad argument, or a target that cannot be used."""


@dataclass(frozen=True)
class BenchOptions:
    target: str
    concurrency: Sequence[int] = (1, 4, 16)
    requests: int | None = 200
    duration_s: float | None = None
    warmup: int | None = None
    body: str | None = None
    sentences: Path | None = None
    content_type: str | None = "application/json"
    accept: str | None = "application/json"
    out_dir: Path = Path(".smlocal") / "bench"
    model_dir: Path | None = None
    code_dir: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    install_requirements: bool = True
    region: str | None = None
    wait_s: float = 30.0
    verbose: bool = False
    client: Client = "auto"


def parse_concurrency(text: str) -> list[int]:
    """`1,4,16` -> [1, 4, 16]: positive, at most MAX_CONCURRENCY, each once, in the given
    order."""
    levels: list[int] = []
    for part in text.split(","):
        try:
            level = int(part.strip())
        except ValueError:
            raise BenchUsageError(f"--concurrency {text!r}: {part.strip()!r} is not an "
                                  "integer (e.g. 1,4,16)") from None
        if not 1 <= level <= MAX_CONCURRENCY:
            raise BenchUsageError(f"--concurrency {level}: each level must be 1.."
                                  f"{MAX_CONCURRENCY}")
        if level in levels:
            raise BenchUsageError(f"--concurrency {text!r}: {level} is given twice")
        levels.append(level)
    return levels


def workload(options: BenchOptions) -> list[BenchRequest]:
    if options.body is not None and options.sentences is not None:
        raise BenchUsageError("give --body or --sentences, not both")
    try:
        if options.sentences is not None:
            return sentence_requests(read_sentences(options.sentences), options.content_type,
                                     options.accept)
    except WorkloadError as exc:
        raise BenchUsageError(str(exc)) from exc
    if options.body is not None:
        return [body_request(options.body, options.content_type, options.accept)]
    return default_requests(options.content_type, options.accept)


def budget(options: BenchOptions) -> Budget:
    requests = None if options.duration_s is not None else options.requests
    try:
        return Budget(requests=requests, duration_s=options.duration_s)
    except ValueError as exc:
        raise BenchUsageError(str(exc)) from exc


def open_ready_target(options: BenchOptions, err: TextIO) -> AnyTarget:
    """The target, healthy: /ping 200 (DescribeEndpoint InService) within --wait seconds."""
    try:
        target = open_target(options.target, model_dir=options.model_dir,
                             code_dir=options.code_dir, environ=options.environ,
                             install_requirements=options.install_requirements,
                             region=options.region)
    except TargetSpecError as exc:
        raise BenchUsageError(str(exc)) from exc
    except TargetError as exc:
        raise BenchUsageError(f"{options.target}: {exc}") from exc
    try:
        if isinstance(target, AsgiTarget):
            if target.load_failure is not None:
                raise BenchUsageError(f"the model failed to load: {target.load_failure}")
        else:
            wait_until_healthy(target, options.wait_s, err)
        status = target.ping().status
        if status != 200:
            raise BenchUsageError(f"{options.target} is not healthy: /ping answers {status}")
    except TargetUnreachable as exc:
        target.close()
        raise BenchUsageError(f"{options.target} is unreachable: {exc}") from exc
    except TargetError as exc:
        target.close()
        raise BenchUsageError(f"{options.target} does not answer: {exc}") from exc
    except BenchUsageError:
        target.close()
        raise
    return target


def settings_document(options: BenchOptions, requests: Sequence[BenchRequest],
                      level_budget: Budget, warmup: Sequence[int]) -> dict[str, Any]:
    return {
        "concurrency": list(options.concurrency),
        "requests_per_level": level_budget.requests,
        "duration_s_per_level": level_budget.duration_s,
        "warmup_per_level": list(warmup),
        "content_type": options.content_type,
        "accept": options.accept,
        "bodies": len(requests),
        "body": (BLOG_SENTENCE if options.body is None and options.sentences is None
                 else options.body),
        "sentences_file": str(options.sentences) if options.sentences else None,
        "model_dir": str(options.model_dir) if options.model_dir else None,
        "code_dir": str(options.code_dir) if options.code_dir else None,
        "environ": dict(options.environ),
        "client": options.client,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
    }


def level_line(level: LevelStats) -> str:
    latency = level.latency_ms
    figures = (f"p50 {latency.p50:.1f} ms  p90 {latency.p90:.1f} ms  p99 {latency.p99:.1f} ms"
               if latency else "no successful request")
    errors = sum(level.errors.values())
    cpu = level.client_cpu_ms_per_request
    return (f"concurrency {level.concurrency:>3}: {level.requests} requests in "
            f"{level.wall_s:.1f} s, {level.throughput_rps:.1f} req/s, {figures}, "
            f"{errors} errors" + (f"; this process {cpu:.2f} ms CPU per request"
                                  if cpu is not None else ""))


def run_bench(options: BenchOptions, out: TextIO, err: TextIO) -> int:
    requests = workload(options)
    level_budget = budget(options)
    levels = list(options.concurrency)
    if not levels:
        raise BenchUsageError("--concurrency needs at least one level")
    if options.warmup is not None and not 0 <= options.warmup <= MAX_REQUESTS:
        raise BenchUsageError(f"--warmup must be 0..{MAX_REQUESTS}, not {options.warmup}")
    if options.environ and options.target != "asgi":
        raise BenchUsageError("-e/--env sets the in-process server's settings: only with "
                              "--target asgi (a container or an endpoint has its own)")
    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchUsageError(f"cannot write to {options.out_dir}: {exc}") from exc
    # By default each level starts by opening every connection once, unmeasured.
    warmup = [options.warmup if options.warmup is not None else level for level in levels]
    with captured_server_log(options.verbose):
        target = open_ready_target(options, err)
        driver = driver_for(target, region=options.region, max_concurrency=max(levels),
                            client=options.client)
        report = SweepReport(target=(target.description if isinstance(target, AsgiTarget)
                                     else options.target),
                             settings=settings_document(options, requests, level_budget,
                                                        warmup))
        warming = ("one warm-up request per user" if options.warmup is None
                   else f"{options.warmup} warm-up requests")
        print(f"smlocal bench: {report.target}; {level_budget.describe()} per level after "
              f"{warming}; {requests[0].describe()}"
              + (f" (+{len(requests) - 1} more bodies)" if len(requests) > 1 else ""),
              file=out, flush=True)
        try:
            for concurrency, level_warmup in zip(levels, warmup, strict=True):
                total = level_budget.requests
                progress = open_progress(total, f"concurrency {concurrency}", err)

                def advance(sample: Sample, progress: Progress = progress) -> None:
                    progress.advance(is_success(sample))

                try:
                    run = run_level(driver, requests, concurrency, level_budget,
                                    warmup=level_warmup, on_sample=advance)
                finally:
                    progress.close()
                level = LevelStats.of(run)
                report.levels.append(level)
                print(level_line(level), file=out, flush=True)
        finally:
            driver.close()
    print("", file=out)
    print(render_table(report.levels), file=out)
    json_path = options.out_dir / JSON_NAME
    chart_path = options.out_dir / CHART_NAME
    try:
        write_json(report, json_path)
        write_chart(report, chart_path)
    except OSError as exc:
        raise BenchUsageError(f"cannot write to {options.out_dir}: {exc}") from exc
    print(f"\nfigures: {json_path}\nchart:   {chart_path}", file=out)
    return 0
