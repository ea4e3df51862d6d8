"""The model behind the routes: loading (S2, S14-S19), workers (S26), batching (S27), the
per-request timeout (S3), replacing a worker that crashed or hung, and swapping in edited
handlers without a restart (the developer loop)."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import os
from contextlib import suppress
from pathlib import Path

from container.serving.batching import (
    Gather,
    LoadFollower,
    PendingInvocation,
    next_batch,
    settle,
)
from container.serving.cpu import ThreadPlan, available_cores, plan_threads
from container.serving.errors import json_error
from container.serving.invocation import Invocation, Outcome
from container.serving.pool import WorkerDied, WorkerProcess, start_forkserver
from container.serving.protocol import Loaded, LoadFailed, WorkerSpec
from container.serving.requirements import (
    RequirementsError,
    already_satisfied,
    install_requirements,
)
from container.serving.settings import ServingSettings

log = logging.getLogger("smlocal.serve")

# A worker that keeps failing to come back is retried at growing intervals, up to this.
MAX_RESTART_DELAY_S = 30.0
WORKER_DIED = "Worker died."


def start_early(settings: ServingSettings) -> None:
    """Start the preloading forkserver (seconds of torch imports) right after the port is bound,
    while the server itself imports, unless pip must run first: the preloaded modules must be
    the installed ones."""
    requirements = settings.requirements_file
    if not requirements.is_file() or already_satisfied(requirements):
        start_forkserver()


class ModelState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class WorkerLoadError(RuntimeError):
    def __init__(self, failure: LoadFailed) -> None:
        super().__init__(failure.reason)
        self.failure = failure


@dataclasses.dataclass(eq=False)
class WorkerSlot:
    """One of the S26 workers: the process serving it now, and the batch it is running."""

    index: int
    worker: WorkerProcess
    # Held while a batch runs, so a reload swaps the process between batches.
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    running: list[PendingInvocation] = dataclasses.field(default_factory=list)
    healthy: bool = True


class ServingRuntime:
    """One model: its workers, its request queue, its batching."""

    def __init__(self, settings: ServingSettings, model_name: str = "model") -> None:
        self.settings = settings
        self.model_name = model_name
        self.state = ModelState.LOADING
        # Why loading failed, for the log and the 503 of /invocations.
        self.failure: str | None = None
        self.slots: list[WorkerSlot] = []
        self.plan: ThreadPlan = plan_threads(settings.workers, available_cores())
        self.batch_size = 1
        self.max_batch_delay_s = settings.max_batch_delay_s
        # No batch settings, batch-aware handlers, one worker: batching.LoadFollower.
        self.follows_load = False
        self._queue: asyncio.Queue[PendingInvocation] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._settled: asyncio.Event | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._request_count = 0

    @property
    def healthy(self) -> bool:
        """S2: /ping is 200 while at least one worker can serve."""
        return self.state is ModelState.READY and any(slot.healthy for slot in self.slots)

    # --- start-up -------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin loading in the background and return at once: the server must answer /ping
        (500 until loaded) from the first moment (S1, S2)."""
        self._queue = asyncio.Queue()
        self._settled = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks.append(asyncio.create_task(self._load(), name="smlocal-model-load"))

    def _spec(self, index: int) -> WorkerSpec:
        return WorkerSpec(
            index=index,
            settings=self.settings,
            model_name=self.model_name,
            threads=self.plan.threads_per_worker,
            batch_size=self.settings.batch_size,
            environ=dict(os.environ),
            cwd=Path.cwd(),
        )

    async def _start_worker(self, index: int) -> WorkerProcess:
        worker = WorkerProcess(self._spec(index))
        report = await asyncio.to_thread(worker.start)
        if isinstance(report, LoadFailed):
            await asyncio.to_thread(worker.stop)
            raise WorkerLoadError(report)
        return worker

    async def _start_workers(self) -> list[WorkerProcess]:
        """All S26 workers, loaded; if any fails, none is kept."""
        results = await asyncio.gather(
            *(self._start_worker(index) for index in range(self.settings.workers)),
            return_exceptions=True,
        )
        workers = [result for result in results if isinstance(result, WorkerProcess)]
        for result in results:
            if isinstance(result, BaseException):
                for worker in workers:
                    await asyncio.to_thread(worker.stop)
                raise result
        return workers

    async def _load(self) -> None:
        settings = self.settings
        try:
            await asyncio.to_thread(
                install_requirements,
                settings.python,
                settings.requirements_file,
                settings.requirements_timeout_s,
            )
            # After the requirements: the preloaded modules must be the installed ones.
            await asyncio.to_thread(start_forkserver)
            log.info("workers: %s", self.plan.describe())
            self._begin_serving(await self._start_workers())
        except asyncio.CancelledError:
            raise
        except WorkerLoadError as exc:
            self._fail(exc.failure.reason, exc.failure.detail)
        except RequirementsError as exc:
            # pip's own output says everything.
            self._fail(f"{type(exc).__name__}: {exc}", str(exc))
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}", repr(exc))
        finally:
            assert self._settled is not None
            self._settled.set()

    def _fail(self, reason: str, detail: str) -> None:
        self.state = ModelState.FAILED
        self.failure = reason
        # S2/S15: the reason goes to the log once; /ping stays 500 and nothing restarts.
        log.error(
            "the model failed to load; /ping answers 500 until the server is restarted:\n%s",
            detail,
        )

    def _begin_serving(self, workers: list[WorkerProcess]) -> None:
        loaded = workers[0].loaded
        assert loaded is not None
        self._choose_batching(loaded)
        self.slots = [WorkerSlot(worker.index, worker) for worker in workers]
        for slot in self.slots:
            self._tasks.append(
                asyncio.create_task(self._serve(slot), name=f"smlocal-worker-{slot.index}")
            )
        self.state = ModelState.READY
        self.failure = None
        log.info("model ready: %d worker(s), %s", len(workers), loaded.source)

    def _choose_batching(self, loaded: Loaded) -> None:
        settings = self.settings
        self.follows_load = False
        if settings.batch_size is not None:
            self.batch_size = settings.batch_size
            self.max_batch_delay_s = settings.max_batch_delay_s
            log.info("batching: up to %d request(s) per batch, waiting at most %g ms "
                     "(SAGEMAKER_TS_BATCH_SIZE, SAGEMAKER_TS_MAX_BATCH_DELAY)%s",
                     self.batch_size, self.max_batch_delay_s * 1000,
                     "; predict_batch_fn runs each batch in one call" if loaded.batch_aware
                     else "")
        elif loaded.batch_aware:
            # No fixed delay: a lone request goes at once, and whatever queued up while the
            # worker was busy goes together in the next predict_batch_fn call.
            self.batch_size, self.max_batch_delay_s = settings.auto_batch_size, 0.0
            # One worker idles while its batch is answered and the next one arrives, and
            # waiting for that one keeps the batches full (batching.LoadFollower). With several
            # workers another computes meanwhile, and waiting would only split the arrivals.
            self.follows_load = settings.workers == 1 and settings.auto_batch_max_wait_s > 0
            log.info("batching: predict_batch_fn gets up to %d queued request(s) per call; "
                     "a lone request goes at once%s (SMLOCAL_AUTO_BATCH_SIZE, "
                     "SMLOCAL_AUTO_BATCH_MAX_WAIT_MS)", self.batch_size,
                     f", and after a batch of n the worker waits up to a fifth of its run time, "
                     f"at most {settings.auto_batch_max_wait_s * 1000:g} ms, for n to queue "
                     "again" if self.follows_load else "")
        else:
            self.batch_size, self.max_batch_delay_s = 1, 0.0

    async def wait_settled(self) -> ModelState:
        """Wait until loading has finished, well or not."""
        assert self._settled is not None, "start() first"
        await self._settled.wait()
        return self.state

    # --- requests -------------------------------------------------------------------------

    async def _serve(self, slot: WorkerSlot) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        follower = LoadFollower(self.settings.auto_batch_size,
                                self.settings.auto_batch_max_wait_s)
        while True:
            gather = (follower.next_gather() if self.follows_load
                      else Gather(self.batch_size, self.max_batch_delay_s))
            batch = await next_batch(self._queue, gather.size, gather.max_delay_s,
                                     enough=gather.enough)
            began = loop.time()
            async with slot.lock:
                worker = slot.worker
                slot.running = batch
                try:
                    outcomes = await worker.run(tuple(pending.invocation for pending in batch))
                except WorkerDied as died:
                    log.error("worker %d: %s; %d request(s) lost with it", slot.index, died,
                              len(batch))
                    settle(batch, [self._worker_died(str(died))] * len(batch))
                    await self._replace(slot)
                    continue
                finally:
                    slot.running = []
            settle(batch, list(outcomes))
            if self.follows_load:
                follower.observe(len(batch), loop.time() - began)

    @staticmethod
    def _worker_died(reason: str) -> Outcome:
        # TorchServe's answer to the requests a dead worker held.
        return json_error(500, "InternalServerException", f"{WORKER_DIED} {reason}")

    async def _replace(self, slot: WorkerSlot) -> None:
        """A new process for a worker that died, retried with back-off until it loads; the
        slot's lock is held, so its batches wait while the other workers keep serving."""
        slot.healthy = False
        await asyncio.to_thread(slot.worker.stop)
        delay = 1.0
        while True:
            try:
                slot.worker = await self._start_worker(slot.index)
            except WorkerLoadError as exc:
                log.error("worker %d: the replacement failed to load (%s); retrying in %g s",
                          slot.index, exc.failure.reason, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RESTART_DELAY_S)
                continue
            slot.healthy = True
            log.info("worker %d: replaced (pid %s)", slot.index, slot.worker.pid)
            return

    def next_request_id(self) -> str:
        self._request_count += 1
        return f"{self._request_count:08d}"

    async def invoke(self, invocation: Invocation) -> Outcome:
        if self.state is not ModelState.READY or self._queue is None:
            reason = (
                f"the model failed to load: {self.failure}"
                if self.state is ModelState.FAILED
                else "the model is still loading; /ping answers 200 when it is ready"
            )
            return json_error(503, "ServiceUnavailableException", reason)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        pending = PendingInvocation(invocation, future)
        self._queue.put_nowait(pending)
        try:
            # S3: the timeout covers queueing and the handlers. A timed-out future is
            # cancelled: a worker that still finishes it settles nobody.
            async with asyncio.timeout(self.settings.timeout_s):
                return await future
        except TimeoutError:
            return self._time_out(pending)
        finally:
            future.cancel()

    def _time_out(self, pending: PendingInvocation) -> Outcome:
        pending.future.cancel()
        timeout = f"SAGEMAKER_MODEL_SERVER_TIMEOUT={self.settings.timeout_s:g}s"
        slot = next((slot for slot in self.slots
                     if any(running is pending for running in slot.running)), None)
        if slot is None:
            log.error("request %s waited past %s for a free worker",
                      pending.invocation.request_id, timeout)
            return json_error(500, "InternalServerException",
                              f"no worker was free to take the request within {timeout}")
        # As TorchServe: a worker past the response timeout is killed and replaced; the other
        # requests of its batch get "Worker died." too.
        log.error("request %s ran past %s: killing worker %d (pid %s)",
                  pending.invocation.request_id, timeout, slot.index, slot.worker.pid)
        slot.worker.kill()
        return self._worker_died(f"The handlers did not answer within {timeout}.")

    # --- the developer loop ---------------------------------------------------------------

    async def reload(self) -> bool:
        """Swap in the user module as it is now, without a restart: new worker processes
        import it and run model_fn, and replace the running ones between batches only once
        all have loaded. On any error the running workers stay; returns success."""
        assert self._reload_lock is not None, "start() first"
        async with self._reload_lock:
            await self.wait_settled()
            try:
                workers = await self._start_workers()
            except WorkerLoadError as exc:
                log.error("reload: the edited handlers failed to load; keeping the running "
                          "ones:\n%s", exc.failure.detail)
                return False
            if self.state is not ModelState.READY:
                self._begin_serving(workers)
                return True
            assert workers[0].loaded is not None
            self._choose_batching(workers[0].loaded)
            for slot, worker in zip(self.slots, workers, strict=True):
                async with slot.lock:
                    old, slot.worker, slot.healthy = slot.worker, worker, True
                await asyncio.to_thread(old.stop)
            log.info("reload: now serving %s", workers[0].loaded.source)
            return True

    # --- shutdown -------------------------------------------------------------------------

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # Never wait on a handler: uvicorn has drained the requests, and one stuck past the
        # timeout must not hold up the exit (S5).
        for slot in self.slots:
            slot.worker.kill()
        await asyncio.gather(*(asyncio.to_thread(slot.worker.stop) for slot in self.slots))
        # Whoever still waits (a model unloaded under its callers) gets an answer now.
        while self._queue is not None and not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_result(json_error(
                    503, "ServiceUnavailableException",
                    f"model {self.model_name} was unloaded before the request ran"))
