"""How many cores the server may use, and how it shares them among model workers (S26).

The AWS image starts one worker per CPU and lets torch give each of them every core's worth of
threads: workers x threads = cores^2 runnable threads, which collapses throughput to a few
percent of what the machine can do. Here workers x threads never exceeds the cores, whatever the
settings say, as long as there are no more workers than cores.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cgroup_cores(cpu_max: Path) -> float | None:
    # cgroup v2: "max 100000" (no limit) or "<quota> <period>", as `docker run --cpus` sets it.
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = _cgroup_cores(cpu_max)
    count = cores or 1
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return count


@dataclass(frozen=True)
class ThreadPlan:
    cores: int
    workers: int
    threads_per_worker: int

    @property
    def oversubscribed(self) -> bool:
        return self.workers * self.threads_per_worker > self.cores

    def describe(self) -> str:
        text = (
            f"{self.workers} worker(s) x {self.threads_per_worker} torch thread(s) on "
            f"{self.cores} core(s)"
        )
        if self.oversubscribed:
            return (
                f"{text}: more workers than cores, so they compete for the CPU; extra workers "
                "only help handlers that wait on I/O (SAGEMAKER_MODEL_SERVER_WORKERS)"
            )
        return f"{text}: workers x threads <= cores, so no core runs two compute threads"


def plan_threads(workers: int, cores: int) -> ThreadPlan:
    """Split the cores evenly among the workers, at least one thread each."""
    return ThreadPlan(cores=cores, workers=workers, threads_per_worker=max(1, cores // workers))
