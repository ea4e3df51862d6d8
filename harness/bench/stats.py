"""The figures of one level: throughput, latency percentiles of the successful requests, and the
count of every other outcome by status (or by error, for requests that got no answer)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.bench.load import LevelRun, Sample

PERCENTILES = (50, 90, 99)


def percentile_ms(latencies_s: Sequence[float], percent: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default), in ms."""
    return float(np.percentile(np.asarray(latencies_s, dtype=float), percent)) * 1000.0


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds."""

    count: int
    mean: float
    minimum: float
    p50: float
    p90: float
    p99: float
    maximum: float

    @classmethod
    def of(cls, latencies_s: Sequence[float]) -> LatencySummary | None:
        if not latencies_s:
            return None
        values = np.asarray(latencies_s, dtype=float) * 1000.0
        p50, p90, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
        return cls(count=len(values), mean=float(values.mean()), minimum=float(values.min()),
                   p50=p50, p90=p90, p99=p99, maximum=float(values.max()))


def is_success(sample: Sample) -> bool:
    return sample.status is not None and 200 <= sample.status < 300


@dataclass(frozen=True)
class LevelStats:
    concurrency: int
    requests: int
    wall_s: float
    # Completed requests (answered or not) per second of the level's wall time.
    throughput_rps: float
    successes: int
    # Every outcome: "200": n, "500": n, "ReadTimeout": n ...
    outcomes: dict[str, int]
    # Of the successful (2xx) requests only: a fast error must not flatter the figures.
    latency_ms: LatencySummary | None
    # This process's CPU per request: the generator's own cost (the server's too, in-process).
    client_cpu_ms_per_request: float | None = None

    @property
    def errors(self) -> dict[str, int]:
        return {outcome: count for outcome, count in self.outcomes.items()
                if not (outcome.isdigit() and 200 <= int(outcome) < 300)}

    @classmethod
    def of(cls, run: LevelRun) -> LevelStats:
        stats = cls.of_samples(run.concurrency, run.samples, run.wall_s)
        if not run.samples:
            return stats
        return dataclasses.replace(
            stats, client_cpu_ms_per_request=run.cpu_s / len(run.samples) * 1000.0)

    @classmethod
    def of_samples(cls, concurrency: int, samples: Sequence[Sample],
                   wall_s: float) -> LevelStats:
        ok = [sample.latency_s for sample in samples if is_success(sample)]
        return cls(
            concurrency=concurrency,
            requests=len(samples),
            wall_s=wall_s,
            throughput_rps=len(samples) / wall_s if wall_s > 0 else 0.0,
            successes=len(ok),
            outcomes=outcome_counts(samples),
            latency_ms=LatencySummary.of(ok),
        )

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["errors"] = self.errors
        return document


def outcome_counts(samples: Iterable[Sample]) -> dict[str, int]:
    counts = Counter(sample.outcome for sample in samples)
    return dict(sorted(counts.items()))
