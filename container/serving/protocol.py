"""What the server and a model worker process say to each other over their pipe.

The server keeps the HTTP side and the request queue; a worker process holds one model replica
(S26) and runs the handler chain on the batches it is sent (S27). Every message is a small frozen
dataclass, pickled by multiprocessing.Connection; outcomes are built in the worker, so the
server never imports torch or the user module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from container.serving.invocation import Invocation, Outcome
from container.serving.settings import ServingSettings


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to build its replica."""

    index: int
    settings: ServingSettings
    # The context's model_name: "model", or the name a multi-model endpoint loaded it under.
    model_name: str
    # torch intra-op threads: the CPU budget of this worker (see container.serving.cpu).
    threads: int
    # The effective S27 batch size, for context.system_properties["batch_size"]; None when it
    # depends on whether the handlers are batch-aware (decided in the worker).
    batch_size: int | None
    # The server's environment and working directory when the worker was asked for: a worker
    # forks from a long-lived preloaded process whose own are older.
    environ: Mapping[str, str]
    cwd: Path


@dataclass(frozen=True)
class Loaded:
    """model_fn (and its hooks) ran: the worker serves from now on."""

    pid: int
    source: str
    # The user module defines predict_batch_fn: one forward per batch (S27).
    batch_aware: bool


@dataclass(frozen=True)
class LoadFailed:
    """The module would not import, its handlers break S17/S18, or model_fn raised."""

    reason: str
    detail: str


@dataclass(frozen=True)
class RunBatch:
    invocations: tuple[Invocation, ...]


@dataclass(frozen=True)
class BatchDone:
    # One per invocation, in order.
    outcomes: tuple[Outcome, ...]


WorkerReport = Loaded | LoadFailed | BatchDone
