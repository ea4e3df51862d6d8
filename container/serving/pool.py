"""Model workers as processes the server can kill and replace (S26), as TorchServe does.

Workers fork from a long-lived "forkserver" process that has already imported torch and
transformers (container.serving.preload), so a new worker costs its model_fn, not seconds of
imports: that keeps replacing a crashed or stuck worker, and a reload, quick. The forkserver is
single-threaded, so forking from it is safe; forking from the server, which runs threads, is not.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.forkserver
import signal
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from container.serving.invocation import Invocation, Outcome
from container.serving.protocol import (
    BatchDone,
    Loaded,
    LoadFailed,
    RunBatch,
    WorkerReport,
    WorkerSpec,
)
from container.serving.worker import worker_main

log = logging.getLogger("smlocal.serve")

PRELOAD_MODULE = "container.serving.preload"
STOP_GRACE_S = 2.0


class WorkerDied(RuntimeError):
    """The worker process ended while it held a batch (a crash, the OOM killer, or a kill
    after SAGEMAKER_MODEL_SERVER_TIMEOUT)."""


def _context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, ForkServerContext)
    context.set_forkserver_preload([PRELOAD_MODULE])
    return context


def start_forkserver() -> None:
    """Start the preloading forkserver now, so its imports overlap other start-up work."""
    _context()
    multiprocessing.forkserver.ensure_running()


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            return f"killed by {name} (a timeout, or the kernel's out-of-memory killer)"
        return f"killed by {name}"
    return f"exited with code {exitcode}"


class WorkerProcess:
    """The server's handle on one worker process. `start` and `stop` block (run them in a
    thread); `run` is a coroutine: the event loop writes the batch and is woken when the reply
    is readable, with no thread hand-offs on the way (they cost more than the pipe itself)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.loaded: Loaded | None = None
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None

    @property
    def index(self) -> int:
        return self.spec.index

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _died(self) -> WorkerDied:
        """Once the pipe has closed: why the process ended (it is gone, so join is short)."""
        assert self._process is not None
        self._process.join(STOP_GRACE_S)
        return WorkerDied(
            f"the worker process (pid {self._process.pid}) "
            f"{describe_exit(self._process.exitcode)}"
        )

    def _receive(self) -> WorkerReport:
        assert self._conn is not None
        try:
            report: WorkerReport = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        return report

    def start(self) -> Loaded | LoadFailed:
        """Start the process and wait until it has loaded the model, or failed to."""
        context = _context()
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=worker_main, args=(child_end, self.spec),
            name=f"smlocal-model-worker-{self.spec.index}", daemon=True,
        )
        process.start()
        child_end.close()
        self._conn, self._process = parent_end, process
        try:
            report = self._receive()
        except WorkerDied as died:
            return LoadFailed(str(died), str(died))
        if isinstance(report, Loaded):
            self.loaded = report
            return report
        if isinstance(report, LoadFailed):
            return report
        return LoadFailed("unexpected report", repr(report))

    async def run(self, invocations: tuple[Invocation, ...]) -> tuple[Outcome, ...]:
        """Send a batch and wait for its outcomes; WorkerDied if the process ends first."""
        conn = self._conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        try:
            # A pipe holds 64 KiB: a larger batch blocks here until the idle worker reads it.
            conn.send(RunBatch(invocations))
        except (OSError, ValueError) as exc:
            raise await asyncio.to_thread(self._died) from exc
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(conn.fileno(), wake)
        try:
            await readable
        finally:
            loop.remove_reader(conn.fileno())
        try:
            # The worker writes its reply in one go: once readable, the rest follows at once.
            report: WorkerReport = conn.recv()
        except (EOFError, OSError) as exc:
            raise await asyncio.to_thread(self._died) from exc
        if not isinstance(report, BatchDone) or len(report.outcomes) != len(invocations):
            raise WorkerDied(f"the worker process answered {type(report).__name__}")
        return report.outcomes

    def kill(self) -> None:
        """SIGKILL, as TorchServe does to a worker past its response timeout; a `run` waiting
        on it raises WorkerDied."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()

    def stop(self) -> None:
        """Close the pipe (the worker leaves its loop), then make sure the process is gone."""
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.join(STOP_GRACE_S)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(STOP_GRACE_S)
