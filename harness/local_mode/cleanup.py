"""What SDK local mode leaves behind (L4): exited containers and the `sagemaker-local` network.

The SDK names its containers `algo-<i>-<5 chars>` and attaches every one of them, training or
serving, to the `sagemaker-local` network (L1), so the network is the selector: nothing else of
the user's is touched.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.local_mode.errors import LocalModeError

NETWORK = "sagemaker-local"
# Set by docker-compose on each container: the directory of the compose file.
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
DOCKER_TIMEOUT_S = 60.0


@dataclass
class Removed:
    containers: list[str] = field(default_factory=list)
    network: bool = False


def _docker(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=DOCKER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalModeError(f"docker {' '.join(args)}: {exc}") from exc


def local_mode_containers(*, include_running: bool) -> list[str]:
    """Names of the containers on the SDK's network: all of them, or only those not running."""
    args = ["ps", "--all", "--filter", f"network={NETWORK}", "--format", "{{.Names}}"]
    if not include_running:
        args[2:2] = ["--filter", "status=exited", "--filter", "status=created",
                     "--filter", "status=dead"]
    result = _docker(args)
    if result.returncode != 0:
        raise LocalModeError(f"docker ps failed: {result.stderr.strip()}")
    return sorted(result.stdout.split())


def _remove(names: list[str]) -> list[str]:
    if names:
        result = _docker(["rm", "--force", *names])
        if result.returncode != 0:
            raise LocalModeError(f"docker rm failed: {result.stderr.strip()}")
    return names


def remove_exited_containers() -> list[str]:
    """Remove the stopped local-mode containers (a finished training job's hosts)."""
    return _remove(local_mode_containers(include_running=False))


def remove_network() -> bool:
    """Remove the SDK's network if it exists and nothing is attached; True if removed."""
    listed = _docker(["network", "ls", "--filter", f"name=^{NETWORK}$", "--format", "{{.Name}}"])
    if NETWORK not in listed.stdout.split():
        return False
    result = _docker(["network", "rm", NETWORK])
    if result.returncode != 0:
        raise LocalModeError(f"docker network rm {NETWORK} failed: {result.stderr.strip()}")
    return True


def remove_network_if_unused() -> bool:
    """Remove the SDK's network unless a container (a running endpoint) is still attached."""
    if local_mode_containers(include_running=True):
        return False
    return remove_network()


def containers_under(directory: Path) -> list[str]:
    """Names of the containers (running or not) of every compose project whose file lies under
    `directory`: the SDK writes one compose file per job or endpoint under its container_root."""
    result = _docker(["ps", "--all", "--filter", f"label={WORKING_DIR_LABEL}", "--format",
                      f'{{{{.Names}}}}\t{{{{.Label "{WORKING_DIR_LABEL}"}}}}'])
    if result.returncode != 0:
        raise LocalModeError(f"docker ps failed: {result.stderr.strip()}")
    root = str(directory.resolve())
    names = []
    for line in result.stdout.splitlines():
        name, _, working_dir = line.partition("\t")
        if working_dir == root or working_dir.startswith(root + "/"):
            names.append(name)
    return sorted(names)


def stop_compose_children() -> None:
    """End the `docker-compose` processes this process started (the SDK's), after their
    containers are gone: without them, compose has nothing left to wait for."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if any("docker-compose" in part or part == "compose" for part in child.cmdline()):
                child.terminate()
    _, alive = psutil.wait_procs(psutil.Process().children(recursive=True), timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            if any("docker-compose" in part or part == "compose" for part in child.cmdline()):
                child.kill()


def remove_interrupted(directory: Path) -> list[str]:
    """After Ctrl-C or SIGTERM: remove the containers of the SDK's compose projects under
    `directory` (running or not), end compose itself, and remove the network if unused."""
    removed = _remove(containers_under(directory))
    stop_compose_children()
    remove_network_if_unused()
    return removed


def remove_everything() -> Removed:
    """Every local-mode container, running or not, then the network."""
    removed = Removed(containers=_remove(local_mode_containers(include_running=True)))
    removed.network = remove_network()
    return removed
