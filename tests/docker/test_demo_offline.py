"""The main command (`make demo` = scripts/demo.sh: data, train, image, compose up, invoke,
contract) never leaves the machine (issue 14 item 7).

The network guard is an audit hook, so it sees only its own process; the demo is a shell script
that starts a dozen Python processes (the smlocal CLI for each step, the training runtime and
script, docker-compose v1, an inline /ping loop). So the guard goes into every one of them:
`harness/testing/network_site` on PYTHONPATH makes each Python process load it at start-up
(sitecustomize) and log every connection and name lookup to one file. The test then proves
coverage (each step's process is in the log) and the result (nothing refused but one local
socket, below). The rest of the host side is not Python: bash, and the docker CLI, which talks to
the Docker socket only; the Docker daemon's own traffic (image pulls) is checked through its
event stream. The containers are outside the question ("host side").

The demo trains one short epoch here (SMLOCAL_DEMO_HYPERPARAMETERS) and runs the statuses-and-
shapes contract (the class cases need the fully trained model); on its own port and compose
project, so it runs beside anyone's endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NETWORK_SITE = ROOT / "harness" / "testing" / "network_site"
QUICK = "epochs=1 max-train-samples=256 num-threads=2 patience=0 test-batch-size=64"
ANY_MODEL_CASES = ROOT / "tests" / "harness" / "testing" / "cola_any_model.yaml"
# docker-compose v1 posts usage metrics to Docker Desktop's CLI socket on every command (its
# compose/metrics/client.py); there is no such socket here, the guard refuses the attempt and
# compose carries on. A Unix socket never leaves the machine by itself, but Docker Desktop would
# forward these metrics, so the attempt is named here rather than allowed by the guard.
COMPOSE_METRICS_SOCKET = "unix:/var/run/docker-cli.sock"


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def guarded(records: list[dict[str, Any]], *words: str) -> list[dict[str, Any]]:
    """The guarded processes whose command line contains every one of `words`."""
    return [r for r in records if r["event"] == "process"
            and all(any(word in part for part in r["argv"]) for word in words)]


def test_demo_makes_no_outbound_attempt_from_the_host(
        smlocal_image: str, cola_zip: Path, compose_command: list[str], tools: SimpleNamespace,
        tmp_path: Path) -> None:
    log = tmp_path / "network.jsonl"
    port = tools.free_port()
    project = f"smlocal-test-demo-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(NETWORK_SITE),
                                                 os.environ.get("PYTHONPATH")])),
        SMLOCAL_NETWORK_LOG=str(log), SMLOCAL_IMAGE=smlocal_image,
        SMLOCAL_DATA_DIR=str(tmp_path / "data"), SMLOCAL_MODEL_DIR=str(tmp_path / "model"),
        SMLOCAL_PORT=str(port), COMPOSE_PROJECT_NAME=project,
        SMLOCAL_DEMO_HYPERPARAMETERS=QUICK, SMLOCAL_DEMO_CASES=str(ANY_MODEL_CASES),
    )
    since = str(int(time.time()))
    try:
        demo = subprocess.run(["bash", "scripts/demo.sh", str(cola_zip)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=1800, check=False)
    finally:
        subprocess.run([*compose_command, "-f", str(ROOT / "docker-compose.yml"), "-p", project,
                        "down", "--timeout", "5"], cwd=ROOT, capture_output=True,
                       timeout=120, check=False)
    until = str(int(time.time()) + 1)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]

    records = read_log(log)
    processes = [r for r in records if r["event"] == "process"]
    attempts = [r for r in records if r["event"] != "process"]
    summary = {"guarded_processes": len(processes), "attempts": len(attempts),
               "refused": [r for r in attempts if not r["allowed"]]}
    print("demo under the network guard:", json.dumps(summary))

    # Coverage: every step ran guarded, down to the training script and compose itself.
    for words in [("smlocal", "data", "cola"), ("smlocal", "train"), ("container", "train"),
                  ("train.py",), ("smlocal", "image", "build"), ("docker-compose", "up"),
                  ("smlocal", "invoke"), ("smlocal", "contract")]:
        assert guarded(records, *words), f"no guarded process ran {' '.join(words)}"
    assert len(guarded(records, "smlocal", "invoke")) == 3
    # The guard saw the demo's own traffic: the endpoint on loopback.
    local = {r["pid"] for r in attempts if r["allowed"] and r["target"].endswith(f":{port}")}
    assert len(local) >= 4, "the /ping loop, three invokes and the contract suite"

    # The result: nothing refused, except compose's metrics socket (see above).
    refused = [r for r in attempts if not r["allowed"]]
    compose_pids = {r["pid"] for r in guarded(records, "docker-compose")}
    unexpected = [r for r in refused
                  if not (r["target"] == COMPOSE_METRICS_SOCKET and r["pid"] in compose_pids)]
    assert unexpected == [], unexpected

    # The daemon pulled nothing either (the image was built, offline, before the demo).
    events = subprocess.run(["docker", "events", "--since", since, "--until", until,
                             "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}"],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert not [line for line in events.splitlines() if line.startswith("pull")], events

    # And the demo's endpoint is gone with its project.
    left = subprocess.run(["docker", "ps", "--all", "--filter",
                           f"label=com.docker.compose.project={project}", "--format",
                           "{{.Names}}"], capture_output=True, text=True, check=True).stdout
    assert left.strip() == ""
