"""Where `smlocal cloud` keeps its state (default `.smlocal/cloud`, `SMLOCAL_CLOUD_DIR`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def server_file(self) -> Path:
        """The running server: pid, port, addresses (written once it answers)."""
        return self.root / "server.json"

    @property
    def log_file(self) -> Path:
        """A detached server's output."""
        return self.root / "server.log"

    @property
    def sdk_config(self) -> Path:
        """The SageMaker SDK config `env` points SAGEMAKER_USER_CONFIG_OVERRIDE at (C2)."""
        return self.root / "sagemaker-config.yaml"

    @property
    def s3_dir(self) -> Path:
        """S3 across restarts: `manifest.json` (bucket -> key -> blob) and `blobs/<etag>`."""
        return self.root / "s3"

    @property
    def records_file(self) -> Path:
        """Training jobs, models, endpoint configs and endpoints, as Describe returns them."""
        return self.root / "records.json"

    @property
    def scratch_dir(self) -> Path:
        """Per-job staging (channels, archives) while a job or endpoint starts."""
        return self.root / "scratch"
