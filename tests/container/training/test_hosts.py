"""T12: waiting for every host to resolve."""

from __future__ import annotations

import pytest

from container.training.hosts import HostResolutionError, wait_for_hosts


def test_t12_waits_until_a_lagging_host_resolves() -> None:
    attempts: dict[str, int] = {}

    def resolve(host: str) -> str:
        attempts[host] = attempts.get(host, 0) + 1
        if host == "algo-2" and attempts[host] < 3:
            raise OSError("Name or service not known")
        return "10.0.0.1"

    wait_for_hosts(["algo-1", "algo-2"], timeout_s=5, resolve=resolve, interval_s=0.01)
    assert attempts == {"algo-1": 1, "algo-2": 3}


def test_t12_gives_up_after_the_timeout_naming_the_host() -> None:
    def never(host: str) -> str:
        raise OSError("Name or service not known")

    with pytest.raises(HostResolutionError, match="algo-2"):
        wait_for_hosts(["algo-2", "algo-3"], timeout_s=0.05, resolve=never, interval_s=0.01)


def test_t12_single_host_jobs_do_not_resolve_anything() -> None:
    def never(host: str) -> str:
        raise AssertionError("must not be called")

    wait_for_hosts(["algo-1"], timeout_s=0, resolve=never)
