"""harness.testing.network_guard: refused and recorded attempts, and what stays allowed."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from harness.testing.network_guard import NetworkBlocked, NetworkGuard, docker_networks


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts and closes connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_a_name_lookup_is_refused_and_recorded() -> None:
    with NetworkGuard() as guard, pytest.raises(urllib.error.URLError, match="NetworkGuard"):
        urllib.request.urlopen("https://sts.amazonaws.com/", timeout=5)
    assert [(a.event, a.target) for a in guard.refused] == [
        ("socket.getaddrinfo", "sts.amazonaws.com:443")
    ]
    with pytest.raises(AssertionError, match=r"sts\.amazonaws\.com:443"):
        guard.assert_offline()


def test_a_connection_to_a_remote_address_is_refused() -> None:
    # 192.0.2.0/24 is TEST-NET-1: never routed, never a Docker network.
    with NetworkGuard(allow_docker_networks=False) as guard:
        with pytest.raises(NetworkBlocked):
            socket.create_connection(("192.0.2.1", 443), timeout=1)
        sock = socket.socket()
        with pytest.raises(NetworkBlocked):
            sock.connect(("192.0.2.1", 443))
        sock.close()
    assert {a.target for a in guard.refused} == {"192.0.2.1:443"}


def test_a_refusal_swallowed_by_the_caller_still_fails_the_check() -> None:
    """The SDK's telemetry catches every exception: the record is what proves a leak."""
    with NetworkGuard() as guard, contextlib.suppress(OSError):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(AssertionError):
        guard.assert_offline()


def test_loopback_is_allowed(loopback_server: int) -> None:
    with NetworkGuard() as guard:
        socket.create_connection(("127.0.0.1", loopback_server), timeout=5).close()
        socket.create_connection(("localhost", loopback_server), timeout=5).close()
    guard.assert_offline()
    assert f"127.0.0.1:{loopback_server}" in {a.target for a in guard.allowed}


def test_only_the_docker_socket_among_unix_sockets() -> None:
    with NetworkGuard() as guard:
        sock = socket.socket(socket.AF_UNIX)
        with pytest.raises(NetworkBlocked):
            sock.connect("/tmp/not-docker.sock")
        sock.close()
    assert [a.target for a in guard.refused] == ["unix:/tmp/not-docker.sock"]
    assert guard._sockets >= {"/var/run/docker.sock"}


def test_extra_networks_are_allowed() -> None:
    with NetworkGuard(allow_docker_networks=False,
                      extra_networks=[ipaddress.ip_network("192.0.2.0/24")]) as guard:
        sock = socket.socket()
        sock.settimeout(0.05)
        with pytest.raises(OSError) as raised:
            sock.connect(("192.0.2.1", 9))  # allowed, so the kernel answers: unreachable
        sock.close()
    assert not isinstance(raised.value, NetworkBlocked)
    guard.assert_offline()


def test_outside_the_block_nothing_is_checked() -> None:
    with NetworkGuard() as guard:
        pass
    with contextlib.suppress(OSError):
        socket.getaddrinfo("example.invalid", 80)
    assert guard.attempts == []


@pytest.mark.docker
def test_docker_networks_include_the_default_bridge() -> None:
    subnets = docker_networks()
    assert subnets, "the engine always has the bridge network"
    with NetworkGuard() as guard:
        address = str(next(subnets[0].hosts()))
        assert guard.allows("socket.getaddrinfo", (address, 80, 0, 0, 0))[0]
