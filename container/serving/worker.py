"""A model worker (S26): one model replica in its own process, with its own context (S18).

`worker_main` is what the process runs: it imports the user module (S14), builds the model with
pre_model_fn/model_fn/model_warmup_fn once (S16), reports over its pipe, then runs the batches it
is sent one at a time until the pipe closes. Because the replica lives in a process, the server
can kill a worker that hangs and replace one that crashed (container.serving.pool), and the
user module's globals (a tokenizer left there by model_fn) always belong to the model they serve.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from container.serving.context import Context, RequestProperties
from container.serving.errors import handler_error_response
from container.serving.handlers import HandlerSet, load_user_module, resolve_handlers
from container.serving.invocation import Invocation, Outcome, make_outcome
from container.serving.protocol import BatchDone, Loaded, LoadFailed, RunBatch, WorkerSpec
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


def resolve(settings: ServingSettings) -> HandlerSet:
    """The user module's handlers over the PyTorch defaults (S14, S16-S18)."""
    from container.serving.defaults import PyTorchDefaults

    module = load_user_module(settings.code_dir, settings.module_name)
    if module is None:
        log.info("no %s.py in %s: using the default handlers", settings.module_name,
                 settings.code_dir)
    return resolve_handlers(module, PyTorchDefaults(settings.accelerator_present))


class ModelWorker:
    def __init__(self, index: int, settings: ServingSettings, handlers: HandlerSet,
                 batch_size: int, model_name: str = "model") -> None:
        self.index = index
        self.settings = settings
        self.handlers = handlers
        self.model: Any = None
        self.context = Context(
            {
                "model_dir": str(settings.model_dir),
                "gpu_id": None,
                "batch_size": batch_size,
                "server_name": SERVER_NAME,
                "server_version": _server_version(),
                "worker_index": index,
            },
            model_name=model_name,
        )

    def load(self) -> None:
        """pre_model_fn, model_fn, model_warmup_fn, once (S16)."""
        handlers = self.handlers
        self.context.system_properties["gpu_id"] = _gpu_id(self.index)
        model_dir = str(self.settings.model_dir)
        if handlers.pre_model_fn is not None:
            handlers.pre_model_fn(self.context, model_dir)
        model = handlers.model_fn(self.context, model_dir)
        if handlers.model_warmup_fn is not None:
            handlers.model_warmup_fn(self.context, model_dir, model)
        self.model = model

    def _failure(self, invocation: Invocation, exc: Exception) -> Outcome:
        trace = traceback.format_exc()
        log.error("worker %d: request %s failed:\n%s", self.index, invocation.request_id, trace)
        return handler_error_response(exc, trace, strict=self.settings.strict)

    def _answer(self, index: int, invocation: Invocation, result: Any) -> Outcome:
        return make_outcome(
            result,
            invocation.accept,
            dict(self.context.request_processor[index].response_headers),
            self.settings.max_response_bytes,
        )

    def run_batch(self, invocations: tuple[Invocation, ...]) -> list[Outcome]:
        """Answer each invocation; a failure answers only its own request (S27).

        With predict_batch_fn and more than one request, input_fn runs per request (its own
        Content-Type), the decoded inputs reach the model in one call, and output_fn runs per
        request (its own Accept). Otherwise the chain (S11) runs once per request.
        """
        self.context.request_processor = [
            RequestProperties(invocation.request_id, invocation.headers)
            for invocation in invocations
        ]
        if self.handlers.predict_batch_fn is not None and len(invocations) > 1:
            return self._run_batched(invocations)
        outcomes: list[Outcome] = []
        for index, invocation in enumerate(invocations):
            self.context.request_index = index
            try:
                result = self.handlers.transform(
                    self.model, invocation.input_data(), invocation.content_type,
                    invocation.accept, self.context,
                )
                outcomes.append(self._answer(index, invocation, result))
            except Exception as exc:
                outcomes.append(self._failure(invocation, exc))
        return outcomes

    def _run_batched(self, invocations: tuple[Invocation, ...]) -> list[Outcome]:
        handlers, context = self.handlers, self.context
        outcomes: list[Outcome | None] = [None] * len(invocations)
        decoded: dict[int, Any] = {}
        for index, invocation in enumerate(invocations):
            context.request_index = index
            try:
                decoded[index] = handlers.input_fn(
                    context, invocation.input_data(), invocation.content_type
                )
            except Exception as exc:
                outcomes[index] = self._failure(invocation, exc)
        predictions = self._predict_together(invocations, decoded, outcomes) if decoded else {}
        for index, prediction in predictions.items():
            invocation = invocations[index]
            context.request_index = index
            try:
                result = handlers.output_fn(context, prediction, invocation.accept)
                outcomes[index] = self._answer(index, invocation, result)
            except Exception as exc:
                outcomes[index] = self._failure(invocation, exc)
        answered = [outcome for outcome in outcomes if outcome is not None]
        assert len(answered) == len(invocations)
        return answered

    def _predict_together(
        self,
        invocations: tuple[Invocation, ...],
        decoded: dict[int, Any],
        outcomes: list[Outcome | None],
    ) -> dict[int, Any]:
        """One predict_batch_fn call for every decoded input. If it fails, predict_fn per
        request, so a bad input answers its own request (into `outcomes`) and the rest are
        still served (S27)."""
        handlers, context = self.handlers, self.context
        assert handlers.predict_batch_fn is not None
        indexes = list(decoded)
        context.request_index = indexes[0]
        try:
            results = list(
                handlers.predict_batch_fn(context, [decoded[i] for i in indexes], self.model)
            )
            if len(results) != len(indexes):
                raise ValueError(
                    f"predict_batch_fn returned {len(results)} predictions for "
                    f"{len(indexes)} inputs; it must return one per input, in order"
                )
            return dict(zip(indexes, results, strict=True))
        except Exception:
            log.warning(
                "worker %d: predict_batch_fn failed on a batch of %d; predicting each request "
                "on its own:\n%s", self.index, len(indexes), traceback.format_exc(),
            )
        predictions: dict[int, Any] = {}
        for index in indexes:
            context.request_index = index
            try:
                predictions[index] = handlers.predict_fn(context, decoded[index], self.model)
            except Exception as exc:
                outcomes[index] = self._failure(invocations[index], exc)
        return predictions


def _set_torch_threads(threads: int) -> None:
    # Before any work: torch sizes its pools on first use.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules or _torch_installed():
        import torch

        torch.set_num_threads(threads)


def _torch_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """The worker process: load, report, then serve batches until the pipe closes."""
    os.environ.clear()
    os.environ.update(spec.environ)
    os.chdir(spec.cwd)
    settings = spec.settings
    try:
        _set_torch_threads(spec.threads)
        handlers = resolve(settings)
        batch_size = spec.batch_size or (
            settings.auto_batch_size if handlers.predict_batch_fn is not None else 1
        )
        worker = ModelWorker(spec.index, settings, handlers, batch_size, spec.model_name)
        worker.load()
    except Exception as exc:
        conn.send(LoadFailed(f"{type(exc).__name__}: {exc}",
                             "".join(traceback.format_exception(exc))))
        return
    log.info("worker %d (pid %d): model loaded with %s", spec.index, os.getpid(),
             handlers.source)
    conn.send(Loaded(os.getpid(), handlers.source, handlers.predict_batch_fn is not None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(message, RunBatch):
            conn.send(BatchDone(tuple(worker.run_batch(message.invocations))))
