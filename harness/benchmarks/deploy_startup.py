"""`deploy()` + the first `predict()` in SDK local mode, from a trained model.tar.gz.

    python -m harness.benchmarks.deploy_startup --model-data model.tar.gz --runs 3

Alternating rounds of three ways to the first prediction, each ending with the endpoint deleted:

- `sdk`: `deploy(wait=False)` returning when the SDK's own `/ping` poll (every 5 s, L6) has seen
  the container ready (the reference);
- `smlocal`: the same call returning on smlocal's 0.1 s `/ping` poll (harness.local_mode.watch);
- `cli`: `smlocal local-mode deploy --detach` then `smlocal local-mode predict` in new processes,
  as a user types them (each process imports the SDK).

Every way includes the SDK's repack of model.tar.gz with the code (it unpacks and re-gzips it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.bench.workload import BLOG_SENTENCE
from harness.image import DEFAULT_TAG
from harness.local_mode.endpoint import deploy


def in_process(model_data: Path, code: Path, image: str, root: Path,
               sdk_poll: bool) -> tuple[float, float]:
    """Seconds to deploy() and to the first prediction."""
    started = time.perf_counter()
    endpoint = deploy(model_data, code_dir=code, image=image, root=root, sdk_poll=sdk_poll)
    deployed = time.perf_counter() - started
    try:
        endpoint.predict(BLOG_SENTENCE)
        return deployed, time.perf_counter() - started
    finally:
        endpoint.delete()


def command_line(model_data: Path, code: Path, image: str, root: Path) -> tuple[float, float]:
    smlocal = [sys.executable, "-m", "harness.cli", "local-mode"]
    started = time.perf_counter()
    subprocess.run([*smlocal, "deploy", "--detach", "--model-data", str(model_data),
                    "--code", str(code), "--image", image, "--root", str(root)],
                   check=True, capture_output=True)
    deployed = time.perf_counter() - started
    try:
        subprocess.run([*smlocal, "predict", "--root", str(root), BLOG_SENTENCE],
                       check=True, capture_output=True)
        return deployed, time.perf_counter() - started
    finally:
        subprocess.run([*smlocal, "down", "--root", str(root)], check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-data", type=Path, required=True, help="a model.tar.gz")
    parser.add_argument("--code", type=Path, default=Path("handlers"))
    parser.add_argument("--image", default=DEFAULT_TAG)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    model_data, code = args.model_data.resolve(), args.code.resolve()

    ways: dict[str, Callable[[Path], tuple[float, float]]] = {
        "sdk": lambda root: in_process(model_data, code, args.image, root, sdk_poll=True),
        "smlocal": lambda root: in_process(model_data, code, args.image, root, sdk_poll=False),
        "cli": lambda root: command_line(model_data, code, args.image, root),
    }
    results: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    with tempfile.TemporaryDirectory(prefix="smlocal-deploy-bench-") as work:
        for run in range(args.runs):
            for way, measure in ways.items():
                results[way].append(measure(Path(work) / f"{way}-{run}"))
                deployed, predicted = results[way][-1]
                print(f"round {run + 1} {way}: deploy {deployed:.1f} s, "
                      f"first prediction {predicted:.1f} s", flush=True)
    reference = statistics.median(total for _, total in results["sdk"])
    print("\n| way | deploy s | deploy + first predict s | ratio |\n|---|---:|---:|---:|")
    for way, runs in results.items():
        total = statistics.median(t for _, t in runs)
        print(f"| {way} | {statistics.median(d for d, _ in runs):.1f} | {total:.1f} | "
              f"{total / reference:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
