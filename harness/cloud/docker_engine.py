"""The Docker engine as `smlocal cloud` uses it (the `docker` package): labelled containers and
networks, files in and out of containers as tar archives (no bind mounts, so the server can run
in a container too), and the bridge address containers reach the server at.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import ipaddress
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# On everything a server creates, valued with its instance id (its state directory), so that
# `down` and a stopping server remove their own containers, never another server's.
LABEL = "smlocal.cloud"
KIND_LABEL = "smlocal.cloud.kind"  # training-job | endpoint
NAME_LABEL = "smlocal.cloud.name"  # the job's or the endpoint's name
HOST_LABEL = "smlocal.cloud.host"  # algo-1 ... / the instance id


@functools.cache
def engine() -> Any:
    # By name: the repository's own docker/ folder would shadow the package for type checkers.
    sdk: Any = importlib.import_module("docker")
    return sdk.from_env(timeout=300)


def labels(instance: str, kind: str, name: str, host: str = "") -> dict[str, str]:
    out = {LABEL: instance, KIND_LABEL: kind, NAME_LABEL: name}
    if host:
        out[HOST_LABEL] = host
    return out


def image_exists(name: str) -> bool:
    import docker.errors

    try:
        engine().images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def bridge_gateway() -> str:
    """The default bridge's gateway: an address of this machine every container can reach
    (also from a job's own network: traffic to a host address is not forwarded between
    bridges)."""
    network = engine().networks.get("bridge")
    for config in network.attrs.get("IPAM", {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
        if config.get("Subnet"):
            # Some engines leave the gateway out: it is the subnet's first address.
            return str(next(ipaddress.ip_network(config["Subnet"], strict=False).hosts()))
    raise RuntimeError("the Docker bridge network has neither a gateway nor a subnet")


def put_directory(container: Any, source: Path, destination: str) -> None:
    """Copy the contents of `source` to `destination` inside a (created) container."""
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for path in sorted(source.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
        archive.seek(0)
        container.put_archive(destination, archive)


def put_files(container: Any, files: dict[str, bytes], destination: str) -> None:
    """Small files (relative path -> bytes) into `destination`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    container.put_archive(destination, buffer.getvalue())


def fetch_directory(container: Any, source: str, target: Path) -> bool:
    """Copy the contents of `source` (a directory in a container, running or not) into `target`;
    False when the container has no such directory."""
    import docker.errors

    try:
        stream, _ = container.get_archive(source)
    except docker.errors.NotFound:
        return False
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as archive:
        for chunk in stream:
            archive.write(chunk)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            top = Path(source.rstrip("/")).name
            members = []
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if not parts or parts[0] != top or len(parts) == 1:
                    continue
                member.name = str(Path(*parts[1:]))
                members.append(member)
            tar.extractall(target, members=members, filter="data")
    return True


def fetch_file(container: Any, path: str) -> bytes | None:
    import docker.errors

    try:
        stream, _ = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                return handle.read() if handle else None
    return None


def tar_gz(source: Path, archive: Path) -> Path:
    """`source`'s contents as a .tar.gz with relative member names (what SageMaker uploads)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    # Level 1: model weights barely compress, and tarfile's default (9) costs seconds per
    # 100 MB for a percent or two.
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for path in sorted(source.rglob("*")) if source.is_dir() else []:
            tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
    return archive


def our_containers(instance: str, **filters: str) -> list[Any]:
    wanted = [f"{LABEL}={instance}", *(f"{key}={value}" for key, value in filters.items())]
    found: list[Any] = engine().containers.list(all=True, filters={"label": wanted})
    return found


def our_networks(instance: str) -> list[Any]:
    found: list[Any] = engine().networks.list(filters={"label": f"{LABEL}={instance}"})
    return found


def remove_container(container: Any) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True, v=True)


def remove_network(network: Any) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        network.remove()


def remove_ours(instance: str) -> int:
    """Remove every container and network labelled ours; how many. Without a reachable engine
    there is nothing of ours to remove (a server run without Docker)."""
    sdk: Any = importlib.import_module("docker")
    try:
        containers, networks = our_containers(instance), our_networks(instance)
    except sdk.errors.DockerException:
        return 0
    for container in containers:
        remove_container(container)
    for network in networks:
        remove_network(network)
    return len(containers) + len(networks)


def iter_lines(stream: Iterator[bytes]) -> Iterator[str]:
    """Whole lines from a container's log stream (chunks split lines anywhere)."""
    pending = b""
    for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace")

