"""A model worker (S26): one model replica, its own thread, its own context (S18).

Each worker runs pre_model_fn/model_fn/model_warmup_fn once, in its thread, then runs batches of
invocations one at a time. Handler code never runs on the event loop, so /ping keeps answering
while a request is busy (S2).
"""

from __future__ import annotations

import logging
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from container.serving.context import Context, RequestProperties
from container.serving.errors import handler_error_response
from container.serving.handlers import HandlerSet
from container.serving.invocation import Invocation, Outcome, make_outcome
from container.serving.settings import ServingSettings

log = logging.getLogger("smlocal.serve")

SERVER_NAME = "smlocal"


def _server_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smlocal")
    except PackageNotFoundError:
        return "0+unknown"


def _gpu_id(index: int) -> int | None:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    # As TorchServe: workers are spread round-robin over the GPUs; None on CPU.
    return index % count if count else None


class ModelWorker:
    def __init__(self, index: int, settings: ServingSettings, handlers: HandlerSet) -> None:
        self.index = index
        self.settings = settings
        self.handlers = handlers
        self.model: Any = None
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"model-worker-{index}"
        )
        self.context = Context(
            {
                "model_dir": str(settings.model_dir),
                "gpu_id": None,
                "batch_size": settings.batch_size,
                "server_name": SERVER_NAME,
                "server_version": _server_version(),
                "worker_index": index,
            }
        )

    def load(self, handlers: HandlerSet) -> None:
        """Build the model with `handlers`; on success they become the worker's handlers.

        Runs in the worker's own thread, so a reload waits for the batch in progress."""
        self.context.system_properties["gpu_id"] = _gpu_id(self.index)
        model_dir = str(self.settings.model_dir)
        if handlers.pre_model_fn is not None:
            handlers.pre_model_fn(self.context, model_dir)
        model = handlers.model_fn(self.context, model_dir)
        if handlers.model_warmup_fn is not None:
            handlers.model_warmup_fn(self.context, model_dir, model)
        self.model = model
        self.handlers = handlers
        log.info("worker %d: model loaded with %s", self.index, handlers.source)

    def run_batch(self, invocations: list[Invocation]) -> list[Outcome]:
        """Run each invocation's handler chain; a failure answers only its own request (S27)."""
        # Read once: a reload may swap them while this batch runs.
        handlers, model = self.handlers, self.model
        context = self.context
        context.request_processor = [
            RequestProperties(invocation.request_id, invocation.headers)
            for invocation in invocations
        ]
        outcomes: list[Outcome] = []
        for index, invocation in enumerate(invocations):
            context.request_index = index
            try:
                result = handlers.transform(
                    model,
                    invocation.input_data(),
                    invocation.content_type,
                    invocation.accept,
                    context,
                )
                outcome = make_outcome(
                    result,
                    invocation.accept,
                    dict(context.request_processor[index].response_headers),
                    self.settings.max_response_bytes,
                )
            except Exception as exc:
                trace = traceback.format_exc()
                log.error("worker %d: request %s failed:\n%s", self.index,
                          invocation.request_id, trace)
                outcome = handler_error_response(exc, trace, strict=self.settings.strict)
            outcomes.append(outcome)
        return outcomes

    def shutdown(self) -> None:
        # Never wait: a handler stuck past the timeout must not hold up the exit (S5).
        self.executor.shutdown(wait=False, cancel_futures=True)
