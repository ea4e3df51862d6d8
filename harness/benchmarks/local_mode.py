"""SageMaker SDK local mode with the smlocal image: fit on 1 and 2 hosts against the same job
run without Docker or the SDK, and deploy() against the SDK's default deploy(wait=True).

    python -m harness.benchmarks.local_mode --data .smlocal/data/cola

One run measures, in this order: `smlocal train` (process mode: the runtime on this host, the
reference for fit), `fit()` on 1 host, `fit()` on 2 hosts, `deploy(wait=False)` + one predict,
and `deploy(wait=True)` + one predict (the reference for deploy). Every job gets the same
hyperparameters (the blog's epochs=1 unless overridden) and the cores split evenly between
hosts. Wall times include everything a user waits for: containers, artifacts, clean-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.bench.workload import BLOG_SENTENCE
from harness.image import DEFAULT_TAG
from harness.local_mode.endpoint import deploy
from harness.local_mode.training import BLOG_HYPERPARAMETERS, fit, read_metrics
from harness.train import CHANNEL_FILES, run_process_training, sdk_value


def read_metrics_file(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _scores(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    testing = metrics["final"]["testing"]
    return f"acc {testing['accuracy']:.4f} MCC {testing['mcc']:.4f}"


def _line(label: str, seconds: float, reference: float, detail: str) -> None:
    print(f"| {label} | {seconds:.1f} | {seconds / reference:.2f}x | {detail} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(".smlocal/data/cola"))
    parser.add_argument("--code", type=Path, default=Path("handlers"))
    parser.add_argument("--image", default=DEFAULT_TAG)
    parser.add_argument("-H", "--hyperparameter", action="append", default=[],
                        metavar="KEY=VALUE", help="added to the blog's hyperparameters")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="smlocal-bench-"))
    overrides = dict(item.split("=", 1) for item in args.hyperparameter)
    cores = os.cpu_count() or 1

    def hyperparameters(hosts: int) -> dict[str, Any]:
        chosen = {**BLOG_HYPERPARAMETERS, "num-threads": max(1, cores // hosts)}
        chosen.update({key: sdk_value(value) for key, value in overrides.items()})
        return chosen

    channels = [c for c, name in CHANNEL_FILES.items() if (args.data / name).is_file()]
    print(f"data {args.data} (channels {', '.join(channels)}), {cores} cores, "
          f"hyperparameters {hyperparameters(1)}", flush=True)
    print("| step | seconds | ratio | detail |\n|---|---:|---:|---|", flush=True)

    started = time.perf_counter()
    process = run_process_training(
        args.data, args.code, "train.py",
        {key: str(value) for key, value in hyperparameters(1).items()},
        work_dir=work / "process",
    )
    reference_fit = time.perf_counter() - started
    _line("`smlocal train` (no Docker, no SDK)", reference_fit, reference_fit,
          _scores(read_metrics_file(process.metrics_file)))

    fits = {}
    for hosts in (1, 2):
        fits[hosts] = fit(args.data, code_dir=args.code, image=args.image,
                          instance_count=hosts, hyperparameters=hyperparameters(hosts),
                          root=work / "local-mode")
        _line(f"`fit()` local mode, {hosts} host(s)", fits[hosts].wall_s, reference_fit,
              _scores(read_metrics(fits[hosts].output_data)))

    timings = {}
    for wait in (True, False):
        endpoint = deploy(fits[1].model_data, code_dir=args.code, image=args.image,
                          root=work / "endpoint", wait=wait)
        try:
            predicted = endpoint.predict(BLOG_SENTENCE)
        finally:
            endpoint.delete()
        timings[wait] = (endpoint.deploy_s, predicted)
    reference_deploy = timings[True][0]
    _line("`deploy(wait=True)` (the SDK's default)", reference_deploy, reference_deploy,
          f"predict -> {timings[True][1]}")
    _line("`deploy(wait=False)` (smlocal)", timings[False][0], reference_deploy,
          f"predict -> {timings[False][1]}")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
