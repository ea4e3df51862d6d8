"""Prove that code under test stays on this machine: every connection and name lookup this
process attempts is checked, and anything but loopback, the Docker socket and Docker's own
networks (the containers) is refused and recorded.

    with NetworkGuard() as guard:
        run_the_sdk_flow()
    guard.assert_offline()

It works below every library: CPython raises an audit event (PEP 578) for each
`socket.connect` and `socket.getaddrinfo`, whatever made the call (urllib3, botocore, http.client),
and an exception raised by the hook fails that call. Refusing alone is not proof, because callers
such as the SDK's telemetry swallow errors; so every refused attempt is also recorded, and
`assert_offline()` fails on any. Subprocesses (the docker and docker-compose clients) are outside
its reach: they talk to the Docker socket.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworkBlocked(ConnectionRefusedError):
    """Raised inside the guarded code where it tried to leave the machine."""


@dataclass(frozen=True)
class Attempt:
    event: str  # "socket.connect" or "socket.getaddrinfo"
    target: str
    allowed: bool


def _docker_socket_paths() -> frozenset[str]:
    paths = set(DOCKER_SOCKETS)
    docker_host = os.environ.get("DOCKER_HOST", "")
    if docker_host.startswith("unix://"):
        paths.add(docker_host.removeprefix("unix://"))
    return frozenset(paths)


def docker_networks() -> list[IpNetwork]:
    """The subnets of the Docker engine's networks, where containers get their addresses."""
    try:
        names = subprocess.run(["docker", "network", "ls", "--quiet"], capture_output=True,
                               text=True, timeout=30, check=True).stdout.split()
        if not names:
            return []
        inspected = subprocess.run(["docker", "network", "inspect", *names],
                                   capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    subnets: list[IpNetwork] = []
    for network in json.loads(inspected.stdout):
        for config in (network.get("IPAM") or {}).get("Config") or []:
            if config.get("Subnet"):
                subnets.append(ipaddress.ip_network(config["Subnet"], strict=False))
    return subnets


@dataclass
class NetworkGuard:
    """A context manager that refuses and records any attempt to reach another machine."""

    allow_docker_networks: bool = True
    extra_networks: Iterable[IpNetwork] = ()
    attempts: list[Attempt] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets = _docker_socket_paths()
        self._networks: list[IpNetwork] = list(self.extra_networks)
        self._checking = threading.local()

    # --- decisions -------------------------------------------------------------------------

    def _in_allowed_networks(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address
                             ) -> bool:
        if any(address in network for network in self._networks):
            return True
        if self.allow_docker_networks:
            # Docker creates networks as the test goes (sagemaker-local): look again.
            self._networks = [*self.extra_networks, *docker_networks()]
        return any(address in network for network in self._networks)

    def _host_allowed(self, host: str) -> bool:
        host = host.strip("[]").split("%", 1)[0]
        if host.lower() in LOCAL_NAMES:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False  # a name to resolve: a DNS query leaves the machine
        return address.is_loopback or address.is_unspecified or self._in_allowed_networks(address)

    def allows(self, event: str, args: tuple[Any, ...]) -> tuple[bool, str]:
        if event == "socket.connect":
            sock, address = args
            if sock.family == socket.AF_UNIX:
                path = address.decode() if isinstance(address, bytes) else str(address)
                return path in self._sockets, f"unix:{path}"
            host, port = str(address[0]), address[1]
            return self._host_allowed(host), f"{host}:{port}"
        if args[0] is None:
            return True, f"(local):{args[1]}"  # getaddrinfo(None, port): this machine
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        return self._host_allowed(host), f"{host}:{args[1]}"

    # --- the hook ---------------------------------------------------------------------------

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in ("socket.connect", "socket.getaddrinfo"):
            return
        if getattr(self._checking, "active", False):
            return  # our own lookups while deciding (none today) must not recurse
        self._checking.active = True
        try:
            allowed, target = self.allows(event, args)
        finally:
            self._checking.active = False
        with self._lock:
            self.attempts.append(Attempt(event, target, allowed))
        if not allowed:
            raise NetworkBlocked(f"NetworkGuard: {event} to {target} refused (offline test)")

    def __enter__(self) -> NetworkGuard:
        _activate(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _deactivate(self)

    # --- results ----------------------------------------------------------------------------

    @property
    def refused(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if not attempt.allowed]

    @property
    def allowed(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.allowed]

    def assert_offline(self) -> None:
        if self.refused:
            listed = ", ".join(f"{a.event} {a.target}" for a in self.refused)
            raise AssertionError(f"attempts to leave the machine: {listed}")


# Audit hooks cannot be removed: one hook for the process, forwarding to the active guards.
_active: list[NetworkGuard] = []


@functools.cache
def _install_hook() -> None:
    def hook(event: str, args: tuple[Any, ...]) -> None:
        for guard in list(_active):
            guard._audit(event, args)

    sys.addaudithook(hook)


def _activate(guard: NetworkGuard) -> None:
    _install_hook()
    _active.append(guard)


def _deactivate(guard: NetworkGuard) -> None:
    _active.remove(guard)
