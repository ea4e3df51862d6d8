"""The model behind the routes: loading (S2, S14-S19), workers (S26), batching (S27), the
per-request timeout (S3) and swapping the user module without a restart (the developer loop)."""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
from contextlib import suppress

from container.serving.batching import PendingInvocation, next_batch, settle
from container.serving.errors import json_error
from container.serving.handlers import (
    HandlerSet,
    forget_code_dir,
    load_user_module,
    resolve_handlers,
)
from container.serving.invocation import Invocation, Outcome
from container.serving.requirements import RequirementsError, install_requirements
from container.serving.settings import ServingSettings
from container.serving.worker import ModelWorker

log = logging.getLogger("smlocal.serve")


class ModelState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ServingRuntime:
    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self.state = ModelState.LOADING
        # Why loading failed, for the log and the 503 of /invocations.
        self.failure: str | None = None
        self.workers: list[ModelWorker] = []
        self._queue: asyncio.Queue[PendingInvocation] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._settled: asyncio.Event | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._request_count = 0

    # --- start-up -------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin loading in the background and return at once: the server must answer /ping
        (500 until loaded) from the first moment (S1, S2)."""
        self._queue = asyncio.Queue()
        self._settled = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks.append(asyncio.create_task(self._load(), name="smlocal-model-load"))

    def _resolve(self) -> HandlerSet:
        from container.serving.defaults import PyTorchDefaults

        module = load_user_module(self.settings.code_dir, self.settings.module_name)
        if module is None:
            log.info(
                "no %s.py in %s: using the default handlers",
                self.settings.module_name,
                self.settings.code_dir,
            )
        return resolve_handlers(module, PyTorchDefaults(self.settings.accelerator_present))

    async def _load_workers(self, handlers: HandlerSet) -> list[ModelWorker]:
        loop = asyncio.get_running_loop()
        workers = [ModelWorker(index, self.settings, handlers) for index in range(
            self.settings.workers)]
        try:
            await asyncio.gather(
                *(loop.run_in_executor(worker.executor, worker.load, handlers)
                  for worker in workers)
            )
        except BaseException:
            for worker in workers:
                worker.shutdown()
            raise
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
            handlers = await asyncio.to_thread(self._resolve)
            self._begin_serving(await self._load_workers(handlers))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
        finally:
            assert self._settled is not None
            self._settled.set()

    def _fail(self, exc: BaseException) -> None:
        import traceback

        self.state = ModelState.FAILED
        self.failure = f"{type(exc).__name__}: {exc}"
        # S2/S15: the reason goes to the log once; /ping stays 500 and nothing restarts.
        # pip's own output says everything; a traceback through our threads would not help.
        detail = (
            str(exc)
            if isinstance(exc, RequirementsError)
            else "".join(traceback.format_exception(exc))
        )
        log.error(
            "the model failed to load; /ping answers 500 until the server is restarted:\n%s",
            detail,
        )

    def _begin_serving(self, workers: list[ModelWorker]) -> None:
        self.workers = workers
        for worker in workers:
            self._tasks.append(
                asyncio.create_task(self._serve(worker), name=f"smlocal-worker-{worker.index}")
            )
        self.state = ModelState.READY
        self.failure = None
        log.info("model ready: %d worker(s), %s", len(workers), workers[0].handlers.source)

    async def wait_settled(self) -> ModelState:
        """Wait until loading has finished, well or not."""
        assert self._settled is not None, "start() first"
        await self._settled.wait()
        return self.state

    # --- requests -------------------------------------------------------------------------

    async def _serve(self, worker: ModelWorker) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        settings = self.settings
        while True:
            batch = await next_batch(self._queue, settings.batch_size, settings.max_batch_delay_s)
            invocations = [pending.invocation for pending in batch]
            try:
                outcomes = await loop.run_in_executor(
                    worker.executor, worker.run_batch, invocations
                )
            except Exception as exc:  # run_batch catches handler errors; this is a bug of ours
                log.exception("worker %d failed to run a batch", worker.index)
                error = json_error(500, "InternalServerException", f"worker failed: {exc}")
                outcomes = [error] * len(batch)
            settle(batch, outcomes)

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
        self._queue.put_nowait(PendingInvocation(invocation, future))
        try:
            # S3: the timeout covers queueing and the handlers; shield keeps the future alive
            # so the worker can still settle it (nobody listens any more) when it finishes.
            return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout_s)
        except TimeoutError:
            future.cancel()
            log.error(
                "request %s ran past SAGEMAKER_MODEL_SERVER_TIMEOUT=%gs",
                invocation.request_id,
                self.settings.timeout_s,
            )
            # TorchServe answers "Worker died." with 500 and restarts the worker; a thread
            # cannot be killed, so here the handler runs on and its worker stays busy until then.
            return json_error(
                500,
                "InternalServerException",
                f"Worker died. The handlers did not answer within "
                f"SAGEMAKER_MODEL_SERVER_TIMEOUT={self.settings.timeout_s:g}s.",
            )
        finally:
            future.cancel()

    # --- the developer loop ---------------------------------------------------------------

    async def reload(self) -> bool:
        """Import the user module again and swap it in without a restart.

        model_fn runs again only when pre_model_fn/model_fn/model_warmup_fn changed (or the
        model had failed to load). On any error the running handlers stay; returns success.
        """
        assert self._reload_lock is not None, "start() first"
        async with self._reload_lock:
            await self.wait_settled()
            try:
                handlers = await asyncio.to_thread(self._resolve)
            except Exception:
                log.exception("reload: the user module is broken; keeping the running handlers")
                return False
            if self.state is not ModelState.READY:
                try:
                    self._begin_serving(await self._load_workers(handlers))
                except Exception as exc:
                    self._fail(exc)
                    return False
                return True
            loop = asyncio.get_running_loop()
            if handlers.loading_fingerprint == self.workers[0].handlers.loading_fingerprint:
                for worker in self.workers:
                    worker.handlers = handlers
                log.info("reload: request handlers swapped (%s)", handlers.source)
                return True
            try:
                # In each worker's own thread: the batch in progress finishes first.
                await asyncio.gather(
                    *(loop.run_in_executor(worker.executor, worker.load, handlers)
                      for worker in self.workers)
                )
            except Exception:
                log.exception("reload: model_fn failed; keeping the running model")
                return False
            log.info("reload: model rebuilt (%s)", handlers.source)
            return True

    # --- shutdown -------------------------------------------------------------------------

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for worker in self.workers:
            worker.shutdown()
        # Leave the import system as found, for the next app in this process (tests, reload).
        if str(self.settings.code_dir) in sys.path:
            forget_code_dir(self.settings.code_dir, self.settings.module_name)
