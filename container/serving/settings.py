"""Everything the serving runtime reads from its environment, read once at start-up (S1-S27).

Only the standard library is imported here: the settings are read before the port is bound, and
the port must accept connections within 250 ms of start (S1).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_BASE_DIR = "/opt/ml"
DEFAULT_PORT = 8080
DEFAULT_PROGRAM = "inference"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_ACCEPT = "application/json"
DEFAULT_MAX_BATCH_DELAY_MS = 100.0
# Past a few dozen sentences a CPU forward gains little per sentence and every caller waits longer.
DEFAULT_AUTO_BATCH_SIZE = 32
DEFAULT_AUTO_BATCH_MAX_WAIT_MS = 10.0
# S4: the SageMaker runtime API refuses bodies over 6 MiB before they reach the container, so a
# local server that accepted more would pass payloads that fail in the cloud.
MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB = 6
# S5: SageMaker sends SIGKILL 30 s after SIGTERM; leave a margin to close the sockets.
DEFAULT_GRACEFUL_SHUTDOWN_S = 25
DEFAULT_REQUIREMENTS_TIMEOUT_S = 600.0
DEFAULT_BODY_TIMEOUT_S = 30.0

BatchStrategy = Literal["SINGLE_RECORD", "MULTI_RECORD"]
_BATCH_STRATEGIES: tuple[BatchStrategy, ...] = ("SINGLE_RECORD", "MULTI_RECORD")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class SettingsError(ValueError):
    """An environment variable holds a value the runtime cannot use; names the variable."""


@dataclass(frozen=True)
class ServingSettings:
    model_dir: Path
    # Where the user module lives: model_dir/code unless SMLOCAL_CODE_DIR says otherwise (S14).
    code_dir: Path
    # The user module's name, `.py` stripped (S14).
    module_name: str
    host: str
    port: int
    # S3: how long one invocation may take, queueing included.
    timeout_s: float
    # S26: model replicas; each runs model_fn once.
    workers: int
    # S9: what a missing or */* Accept means.
    default_accept: str
    # S27: SAGEMAKER_TS_BATCH_SIZE; 1 turns batching off. None (unset): batch-aware handlers
    # (predict_batch_fn) get whatever is queued when a worker frees up, up to auto_batch_size,
    # with no added delay, so a lone request is never held back; others run one at a time.
    batch_size: int | None
    max_batch_delay_s: float
    auto_batch_size: int
    # After a batch of n, how long a free worker may wait for n requests to queue again
    # (container.serving.batching.LoadFollower); 0 never waits.
    auto_batch_max_wait_s: float
    # S21: the Elastic Inference branch of the default predict_fn.
    accelerator_present: bool
    # S6: GET /execution-parameters.
    max_concurrent_transforms: int
    batch_strategy: BatchStrategy
    max_payload_mb: int
    # S23: 415/406/400 with JSON bodies instead of the DLC's 500 with a traceback.
    strict: bool
    max_request_bytes: int
    max_response_bytes: int
    # SMLOCAL_BODY_TIMEOUT: the whole body must arrive within it, else 408 (slow clients).
    body_timeout_s: float
    graceful_shutdown_s: int
    # SAGEMAKER_MULTI_MODEL: models are loaded and unloaded through /models at run time.
    multi_model: bool
    # The memory that loaded models may hold together before the least recently used are
    # unloaded; None: a share of the machine's (or the container's) memory.
    multi_model_memory_bytes: int | None
    # S15: the interpreter whose pip installs requirements.txt, and how long it may take.
    python: str
    requirements_timeout_s: float

    @property
    def requirements_file(self) -> Path:
        return self.code_dir / "requirements.txt"

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        model_dir: Path | None = None,
        code_dir: Path | None = None,
    ) -> ServingSettings:
        """Read and validate every setting; raises SettingsError naming the bad variable.

        `model_dir` and `code_dir` override the environment (the host-side `smlocal serve`).
        """
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        resolved_model_dir = model_dir or Path(env.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR)) / (
            "model"
        )
        if code_dir is None:
            override = env.get("SMLOCAL_CODE_DIR", "")
            code_dir = Path(override) if override else resolved_model_dir / "code"
        workers = reader.integer("SAGEMAKER_MODEL_SERVER_WORKERS", 1, minimum=1)
        return cls(
            model_dir=resolved_model_dir,
            code_dir=code_dir,
            module_name=_module_name(env.get("SAGEMAKER_PROGRAM", "") or DEFAULT_PROGRAM),
            host=env.get("SMLOCAL_BIND_HOST", "0.0.0.0"),
            port=reader.integer("SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, minimum=0, maximum=65535),
            timeout_s=reader.number("SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT_S),
            workers=workers,
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "") or DEFAULT_ACCEPT,
            batch_size=reader.optional_integer("SAGEMAKER_TS_BATCH_SIZE", minimum=1),
            max_batch_delay_s=reader.number(
                "SAGEMAKER_TS_MAX_BATCH_DELAY", DEFAULT_MAX_BATCH_DELAY_MS, minimum=0.0
            )
            / 1000.0,
            auto_batch_size=reader.integer(
                "SMLOCAL_AUTO_BATCH_SIZE", DEFAULT_AUTO_BATCH_SIZE, minimum=1
            ),
            auto_batch_max_wait_s=reader.number(
                "SMLOCAL_AUTO_BATCH_MAX_WAIT_MS", DEFAULT_AUTO_BATCH_MAX_WAIT_MS, minimum=0.0
            )
            / 1000.0,
            # The toolkit compares with the exact string "true"; anything else is off (S21).
            accelerator_present=env.get("SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT") == "true",
            max_concurrent_transforms=reader.integer(
                "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", workers, minimum=1
            ),
            batch_strategy=reader.batch_strategy("SAGEMAKER_BATCH_STRATEGY"),
            max_payload_mb=reader.integer(
                "SAGEMAKER_MAX_PAYLOAD_IN_MB", DEFAULT_MAX_PAYLOAD_MB, minimum=0
            ),
            strict=reader.flag("SMLOCAL_STRICT"),
            multi_model=reader.flag("SAGEMAKER_MULTI_MODEL"),
            multi_model_memory_bytes=_megabytes(
                reader.optional_integer("SMLOCAL_MULTI_MODEL_MEMORY_MB", minimum=1)),
            max_request_bytes=MAX_BODY_BYTES,
            max_response_bytes=MAX_BODY_BYTES,
            body_timeout_s=reader.number("SMLOCAL_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT_S),
            graceful_shutdown_s=reader.integer(
                "SMLOCAL_GRACEFUL_SHUTDOWN_TIMEOUT", DEFAULT_GRACEFUL_SHUTDOWN_S, minimum=0
            ),
            python=env.get("SMLOCAL_PYTHON", "") or sys.executable,
            requirements_timeout_s=reader.number(
                "SMLOCAL_REQUIREMENTS_TIMEOUT", DEFAULT_REQUIREMENTS_TIMEOUT_S
            ),
        )


def _megabytes(value: int | None) -> int | None:
    return None if value is None else value * 1024 * 1024


def _module_name(program: str) -> str:
    return program.removesuffix(".py")


@dataclass(frozen=True)
class _Reader:
    env: Mapping[str, str]

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not an integer") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"{name}={value} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name}={value} must be at most {maximum}")
        return value

    def optional_integer(self, name: str, *, minimum: int) -> int | None:
        if not self.env.get(name, "").strip():
            return None
        return self.integer(name, minimum, minimum=minimum)

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number") from None
        if minimum is None and value <= 0:
            raise SettingsError(f"{name}={raw} must be positive")
        if minimum is not None and value < minimum:
            raise SettingsError(f"{name}={raw} must be at least {minimum:g}")
        return value

    def flag(self, name: str) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")

    def batch_strategy(self, name: str) -> BatchStrategy:
        raw = self.env.get(name, "").strip().upper() or "MULTI_RECORD"
        for strategy in _BATCH_STRATEGIES:
            if raw == strategy:
                return strategy
        raise SettingsError(f"{name}={raw!r} must be SINGLE_RECORD or MULTI_RECORD")
