"""Multi-model endpoints (SAGEMAKER_MULTI_MODEL=true), as the AWS PyTorch inference image serves
them: no model at start (/ping is 200 at once), models loaded and unloaded at run time through
/models, an invocation routed by the X-Amzn-SageMaker-Target-Model header or /models/{name}/invoke.

Each model is a ServingRuntime of its own: its own handlers (code/ inside its directory), workers,
context and queue. Loaded models share a memory budget; past it the least recently used are
unloaded, and remembered, so a later invocation loads them again (on SageMaker the platform does
that reloading; a container on its own has to).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from container.serving.errors import ErrorResponse, json_error
from container.serving.invocation import Invocation, InvocationResult, Outcome
from container.serving.runtime import ModelState, ServingRuntime
from container.serving.settings import ServingSettings

log = logging.getLogger("smlocal.serve")

TARGET_MODEL_HEADER = "x-amzn-sagemaker-target-model"
# Without a configured budget, loaded models may hold this share of the memory limit.
DEFAULT_BUDGET_SHARE = 0.7
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")
MEMINFO = Path("/proc/meminfo")


def memory_limit_bytes() -> int:
    """The container's memory limit (cgroup v2), else the machine's memory."""
    try:
        raw = CGROUP_MEMORY_MAX.read_text().strip()
        if raw != "max":
            return int(raw)
    except (OSError, ValueError):
        pass
    for line in MEMINFO.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise OSError("no MemTotal in /proc/meminfo")


def process_memory_bytes(pid: int) -> int:
    """Proportional set size: the pages a worker shares with the forkserver it forked from
    (torch, transformers) count once across them, not once per process."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class LoadedModel:
    name: str
    url: Path
    runtime: ServingRuntime

    def memory_bytes(self) -> int:
        return sum(process_memory_bytes(slot.worker.pid) for slot in self.runtime.slots
                   if slot.worker.pid is not None)

    def describe(self) -> dict[str, Any]:
        return {"modelName": self.name, "modelUrl": str(self.url),
                "memoryBytes": self.memory_bytes()}


def _status(message: str) -> Outcome:
    return InvocationResult(json.dumps({"status": message}).encode(), "application/json")


class MultiModelRuntime:
    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self.budget_bytes = settings.multi_model_memory_bytes or int(
            memory_limit_bytes() * DEFAULT_BUDGET_SHARE)
        # Least recently used first.
        self.models: OrderedDict[str, LoadedModel] = OrderedDict()
        # Unloaded to free memory, loaded again by the next invocation.
        self.evicted: dict[str, Path] = {}
        self._lock = asyncio.Lock()
        self._request_count = 0

    # No model is needed to be healthy (S2 on a multi-model endpoint).
    healthy = True
    state = ModelState.READY
    failure: str | None = None

    async def wait_settled(self) -> ModelState:
        return self.state

    async def start(self) -> None:
        log.info("multi-model endpoint: no model loaded; loaded models may hold %d MiB "
                 "(SMLOCAL_MULTI_MODEL_MEMORY_MB) before the least recently used is unloaded",
                 self.budget_bytes // (1024 * 1024))

    async def stop(self) -> None:
        for model in list(self.models.values()):
            await model.runtime.stop()
        self.models.clear()

    def next_request_id(self) -> str:
        self._request_count += 1
        return f"{self._request_count:08d}"

    # --- management -----------------------------------------------------------------------

    def _settings_for(self, url: Path) -> ServingSettings:
        return dataclasses.replace(self.settings, model_dir=url, code_dir=url / "code",
                                   multi_model=False)

    async def _start(self, name: str, url: Path) -> LoadedModel | ErrorResponse:
        runtime = ServingRuntime(self._settings_for(url), model_name=name)
        await runtime.start()
        if await runtime.wait_settled() is not ModelState.READY:
            await runtime.stop()
            return json_error(500, "InternalServerException",
                              f"Failed to load model {name}: {runtime.failure}")
        return LoadedModel(name, url, runtime)

    async def load(self, name: str, url: str) -> Outcome:
        if not name or not url:
            return json_error(400, "BadRequestException",
                              'send {"model_name": "...", "url": "/opt/ml/models/.../model"}')
        path = Path(url)
        async with self._lock:
            if name in self.models:
                return json_error(409, "ConflictStatusException",
                                  f"Model {name} is already loaded.")
            if not path.is_dir():
                return json_error(404, "ModelNotFoundException",
                                  f"Model directory not found: {url}")
            loaded = await self._start(name, path)
            if isinstance(loaded, ErrorResponse):
                return loaded
            self.models[name] = loaded
            self.evicted.pop(name, None)
            log.info("model %s loaded from %s (%d MiB)", name, url,
                     loaded.memory_bytes() // (1024 * 1024))
            await self._keep_within_budget(keep=name)
        return _status(f'Model "{name}" loaded')

    async def _keep_within_budget(self, keep: str) -> None:
        """Unload the least recently used models until the rest fit the budget."""
        while len(self.models) > 1:
            used = sum(model.memory_bytes() for model in self.models.values())
            if used <= self.budget_bytes:
                return
            name = next(name for name in self.models if name != keep)
            model = self.models.pop(name)
            await model.runtime.stop()
            self.evicted[name] = model.url
            log.info("model %s unloaded, least recently used: %d MiB in use over a budget of "
                     "%d MiB; the next invocation loads it again", name,
                     used // (1024 * 1024), self.budget_bytes // (1024 * 1024))

    async def unload(self, name: str) -> Outcome:
        async with self._lock:
            model = self.models.pop(name, None)
            if model is None:
                if self.evicted.pop(name, None) is not None:
                    return _status(f'Model "{name}" unloaded')
                return json_error(404, "ModelNotFoundException", f"Model not found: {name}")
            await model.runtime.stop()
        log.info("model %s unloaded", name)
        return _status(f'Model "{name}" unloaded')

    def describe(self, name: str) -> dict[str, Any] | ErrorResponse:
        model = self.models.get(name)
        if model is None:
            return json_error(404, "ModelNotFoundException", f"Model not found: {name}")
        return model.describe()

    def list_models(self) -> dict[str, Any]:
        return {"models": [model.describe() for model in self.models.values()]}

    # --- invocations ----------------------------------------------------------------------

    async def _model(self, name: str) -> LoadedModel | ErrorResponse:
        model = self.models.get(name)
        if model is not None:
            self.models.move_to_end(name)
            return model
        url = self.evicted.get(name)
        if url is None:
            return json_error(404, "ModelNotFoundException", f"Model not found: {name}")
        log.info("model %s was unloaded for memory: loading it again from %s", name, url)
        outcome = await self.load(name, str(url))
        if isinstance(outcome, ErrorResponse) and outcome.status_code != 409:
            return outcome
        return self.models.get(name) or json_error(
            503, "ServiceUnavailableException", f"model {name} could not be kept loaded")

    async def invoke(self, invocation: Invocation, name: str | None = None) -> Outcome:
        target = name or next(
            (value for header, value in invocation.headers
             if header.lower() == TARGET_MODEL_HEADER),
            None,
        )
        if not target:
            return json_error(400, "BadRequestException",
                              "a multi-model endpoint needs the model: send the "
                              "X-Amzn-SageMaker-Target-Model header or POST /models/{name}/invoke")
        model = await self._model(target)
        if isinstance(model, ErrorResponse):
            return model
        return await model.runtime.invoke(invocation)
