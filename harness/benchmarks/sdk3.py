"""SageMaker SDK 3.x next to 2.x on the same job: fit on 1 and 2 hosts and deploy + one invoke,
each SDK in its own environment (they cannot share one), the smlocal image for both.

    python -m harness.benchmarks.sdk3 --data .smlocal/data/cola

2.x runs in .venv (`PyTorch(...).fit()`, `deploy()` with the SDK's default wait=True:
harness.local_mode), 3.x in .venv-sdk3 (`ModelTrainer(training_mode=Mode.LOCAL_CONTAINER)
.train()`, `ModelBuilder(mode=Mode.LOCAL_CONTAINER).build()` + `deploy()`: harness.sdk3), one
after the other, the same data, code, hyperparameters and threads per host. Wall times include
everything a user waits for (containers, artifacts, clean-up); the ratio is 3.x over 2.x, the
figure that holds on a loaded machine. Each side is this module run with `--side 2|3`, which
prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.bench.workload import BLOG_SENTENCE
from harness.image import DEFAULT_TAG

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = {2: ROOT / ".venv", 3: ROOT / ".venv-sdk3"}
STEPS = (("fit_1", "fit, 1 host"), ("fit_2", "fit, 2 hosts"), ("deploy", "deploy + ready"))


def hyperparameters(hosts: int, overrides: dict[str, str]) -> dict[str, Any]:
    from harness.train import sdk_value

    cores = os.cpu_count() or 1
    chosen: dict[str, Any] = {"num-threads": max(1, cores // hosts), "patience": 0}
    chosen.update({key: sdk_value(value) for key, value in overrides.items()})
    return chosen


def side_2x(args: argparse.Namespace, overrides: dict[str, str]) -> dict[str, Any]:
    from harness.local_mode.endpoint import deploy
    from harness.local_mode.training import fit

    timings: dict[str, Any] = {}
    fits = {}
    for hosts in (1, 2):
        fits[hosts] = fit(args.data, code_dir=args.code, image=args.image, instance_count=hosts,
                          hyperparameters=hyperparameters(hosts, overrides),
                          root=args.work / "local-mode")
        timings[f"fit_{hosts}"] = fits[hosts].wall_s
    endpoint = deploy(fits[1].model_data, code_dir=args.code, image=args.image,
                      root=args.work / "endpoint", wait=True)
    try:
        timings["answer"] = endpoint.predict(BLOG_SENTENCE)
    finally:
        endpoint.delete()
    timings["deploy"] = endpoint.deploy_s
    return timings


def side_3x(args: argparse.Namespace, overrides: dict[str, str]) -> dict[str, Any]:
    from harness.sdk3.serving import deploy_local, stage_model
    from harness.sdk3.training import train

    timings: dict[str, Any] = {}
    trained = {}
    for hosts in (1, 2):
        trained[hosts] = train(args.data, code_dir=args.code, image=args.image,
                               instance_count=hosts,
                               hyperparameters=hyperparameters(hosts, overrides),
                               root=args.work / "sdk3")
        timings[f"fit_{hosts}"] = trained[hosts].wall_s
    model_dir = stage_model(trained[1].model_data, args.code, args.work / "sdk3-model")
    with deploy_local(model_dir, image=args.image, root=args.work / "sdk3") as endpoint:
        timings["answer"] = endpoint.invoke([BLOG_SENTENCE])
    timings["deploy"] = endpoint.build_s + endpoint.deploy_s
    return timings


def run_side(line: int, args: argparse.Namespace) -> dict[str, Any]:
    python = ENVIRONMENTS[line] / "bin" / "python"
    command = [str(python), "-m", "harness.benchmarks.sdk3", "--side", str(line),
               "--data", str(args.data), "--code", str(args.code), "--image", args.image,
               "--work-dir", str(args.work / f"sdk{line}")]
    for item in args.hyperparameter:
        command += ["-H", item]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"SDK {line}.x side failed ({result.returncode}):\n"
                         f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    timings: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    timings["total"] = time.perf_counter() - started
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(".smlocal/data/cola"))
    parser.add_argument("--code", type=Path, default=Path("handlers"))
    parser.add_argument("--image", default=DEFAULT_TAG)
    parser.add_argument("-H", "--hyperparameter", action="append", default=[],
                        metavar="KEY=VALUE", help="added to the blog's hyperparameters")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary directory")
    parser.add_argument("--side", type=int, choices=(2, 3), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data, args.code = args.data.resolve(), args.code.resolve()
    args.work = (args.work_dir or Path(tempfile.mkdtemp(prefix="smlocal-bench-sdk3-"))).resolve()
    overrides = dict(item.split("=", 1) for item in args.hyperparameter)
    if args.side is not None:
        # One SDK line, in its own environment: the result is the last line of stdout.
        side = side_2x if args.side == 2 else side_3x
        timings = side(args, overrides)
        print(json.dumps(timings), flush=True)
        return 0

    print(f"data {args.data}, code {args.code}, {os.cpu_count()} cores, "
          f"hyperparameters {hyperparameters(1, overrides)}", flush=True)
    results = {line: run_side(line, args) for line in (2, 3)}
    print("| step | SDK 2.x s | SDK 3.x s | 3.x / 2.x |\n|---|---:|---:|---:|")
    for key, label in STEPS:
        two, three = results[2][key], results[3][key]
        print(f"| {label} | {two:.1f} | {three:.1f} | {three / two:.2f}x |")
    print(f"answers: 2.x {results[2]['answer']}, 3.x {results[3]['answer']}")
    if args.work_dir is None:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
