"""Container start -> first `/ping` 200 -> first successful invocation, and SIGTERM -> exit, for
an image serving a model.

    python -m harness.benchmarks.container_startup --model-dir .smlocal/model --runs 3

Each run starts `docker run IMAGE serve` with the model mounted read-only at /opt/ml/model and
the handlers at /opt/ml/code, polls /ping every 20 ms on 127.0.0.1 and, the moment it is 200,
invokes the blog's sentence: a 200 /ping must mean an invocation succeeds (S2). Then it stops the
container.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from harness.bench.workload import BLOG_SENTENCE


def ping_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


SENTENCE = json.dumps(BLOG_SENTENCE).encode()


def invoke_status(url: str) -> int:
    request = urllib.request.Request(url, data=SENTENCE, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def one_run(image: str, model_dir: Path, code_dir: Path,
            port: int) -> tuple[float, float, float]:
    name = f"smlocal-bench-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8080",
         "-v", f"{model_dir.resolve()}:/opt/ml/model:ro",
         "-v", f"{code_dir.resolve()}:/opt/ml/code:ro",
         "-e", "SMLOCAL_CODE_DIR=/opt/ml/code", image, "serve"],
        check=True, capture_output=True,
    )
    try:
        while ping_status(f"http://127.0.0.1:{port}/ping") != 200:
            if time.perf_counter() - started > 240:
                raise TimeoutError("no /ping 200 within 240 s (SageMaker's limit)")
            time.sleep(0.02)
        healthy = time.perf_counter() - started
        status = invoke_status(f"http://127.0.0.1:{port}/invocations")
        if status != 200:
            raise RuntimeError(f"/ping was 200 but the first invocation answered {status}")
        served = time.perf_counter() - started
        stop_started = time.perf_counter()
        subprocess.run(["docker", "stop", name], check=True, capture_output=True)
        return healthy, served, time.perf_counter() - stop_started
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="smlocal:latest")
    parser.add_argument("--model-dir", type=Path, default=Path(".smlocal/model"))
    parser.add_argument("--code", type=Path, default=Path("handlers"))
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not (args.model_dir / "config.json").is_file():
        print(f"container_startup: no model in {args.model_dir} (run `smlocal train`)",
              file=sys.stderr)
        return 2
    results = [one_run(args.image, args.model_dir, args.code, args.port) for _ in range(args.runs)]
    for number, (healthy, served, stopped) in enumerate(results, start=1):
        print(f"run {number}: start -> /ping 200 {healthy:6.2f} s   -> first invocation "
              f"{served:6.2f} s   docker stop {stopped:5.2f} s")
    print(f"median: start -> /ping 200 {statistics.median(r[0] for r in results):.2f} s, "
          f"-> first invocation {statistics.median(r[1] for r in results):.2f} s, "
          f"docker stop {statistics.median(r[2] for r in results):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
