"""Everything the training runtime reads from its own environment, read once at start-up."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from container.training.paths import TrainingPaths
from container.training.s3 import S3Access

DEFAULT_BASE_DIR = "/opt/ml"


@dataclass(frozen=True)
class TrainingSettings:
    paths: TrainingPaths
    # The interpreter that runs the user's script and pip; the runtime's own by default.
    python: str
    # How long to wait for every host name to resolve before giving up (T12).
    host_resolution_timeout_s: float
    # Where an s3:// sagemaker_submit_directory is fetched from, and with which credentials (C5).
    s3: S3Access = field(default_factory=lambda: S3Access.from_environ({}))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TrainingSettings:
        env = os.environ if environ is None else environ
        base = Path(env.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR))
        return cls(
            paths=TrainingPaths(base),
            python=env.get("SMLOCAL_PYTHON", sys.executable),
            host_resolution_timeout_s=float(env.get("SMLOCAL_HOST_RESOLUTION_TIMEOUT", "300")),
            s3=S3Access.from_environ(env),
        )
