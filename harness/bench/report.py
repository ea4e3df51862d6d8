"""What a sweep leaves: a printed table, the raw figures as JSON, and a PNG chart of latency
percentiles and throughput against concurrency."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bench.stats import LevelStats


@dataclass(frozen=True)
class SweepReport:
    target: str
    settings: Mapping[str, Any]
    levels: list[LevelStats] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "settings": dict(self.settings),
                "levels": [level.to_json() for level in self.levels]}


def _errors_text(level: LevelStats) -> str:
    errors = level.errors
    return ", ".join(f"{outcome}: {count}" for outcome, count in errors.items()) or "-"


def render_table(levels: Sequence[LevelStats]) -> str:
    lines = [f"{'concurrency':>11}  {'requests':>8}  {'req/s':>8}  {'p50 ms':>8}  "
             f"{'p90 ms':>8}  {'p99 ms':>8}  errors by status"]
    for level in levels:
        latency = level.latency_ms
        cells = ((f"{latency.p50:8.1f}", f"{latency.p90:8.1f}", f"{latency.p99:8.1f}")
                 if latency else (f"{'-':>8}",) * 3)
        lines.append(f"{level.concurrency:>11}  {level.requests:>8}  "
                     f"{level.throughput_rps:8.1f}  {'  '.join(cells)}  {_errors_text(level)}")
    return "\n".join(lines)


def write_json(report: SweepReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


def write_chart(report: SweepReport, path: Path) -> None:
    """Latency percentiles (left) and throughput (right) against concurrency, log2 x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [level for level in report.levels if level.latency_ms is not None]
    concurrency = [level.concurrency for level in levels]
    figure, (latency_axes, throughput_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in ("p50", "p90", "p99"):
        values = [getattr(level.latency_ms, name) for level in levels]
        latency_axes.plot(concurrency, values, marker="o", label=name)
    latency_axes.set_ylabel("latency of successful requests (ms)")
    latency_axes.legend()
    throughput_axes.plot(concurrency, [level.throughput_rps for level in levels], marker="o",
                         color="tab:green")
    throughput_axes.set_ylabel("throughput (requests/s)")
    for axes in (latency_axes, throughput_axes):
        axes.set_xlabel("concurrency")
        if len(set(concurrency)) > 1:
            axes.set_xscale("log", base=2)
        axes.set_xticks(concurrency, [str(value) for value in concurrency])
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
    figure.suptitle(f"smlocal bench: {report.target}", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
