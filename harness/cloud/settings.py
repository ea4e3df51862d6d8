"""Everything the cloud server reads from its environment, read once at start-up."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4580
DEFAULT_REGION = "us-east-1"
# moto's account for any access key that is not 12 digits: the ARNs the API returns carry it.
ACCOUNT_ID = "123456789012"
DEFAULT_IMAGE = "smlocal:latest"
DEFAULT_STATE_DIR = Path(".smlocal") / "cloud"
# `smlocal image build --reference` (harness/reference_image.py's REFERENCE_TAG; not imported,
# so that the server's settings stay free of the image builder).
REFERENCE_IMAGE = "smlocal-reference:latest"


def instance_id(state_dir: Path) -> str:
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CloudSettings:
    state_dir: Path
    port: int
    region: str
    # The local image every AWS PyTorch image URI maps to (C18).
    image: str
    # What AWS PyTorch image URIs of endpoints run as: `image`, or the reference image (the
    # AWS serving stack, `smlocal image build --reference`) with `--serving-image reference`.
    serving_image: str
    # Where containers reach the server (S3 for sagemaker_submit_directory, C5): the Docker
    # bridge gateway; None means "ask the engine".
    bridge_address: str | None
    # Seconds an endpoint container may take to answer /ping 200 before the endpoint fails.
    endpoint_start_timeout_s: float
    # InvokeEndpoint: the container's time to answer (C9: 60 s on SageMaker).
    invocation_timeout_s: float
    # SIGTERM to SIGKILL when a job is stopped (T6).
    stop_grace_s: float

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, *,
                     port: int | None = None, state_dir: Path | None = None,
                     serving_image: str | None = None) -> CloudSettings:
        env = os.environ if environ is None else environ
        image = env.get("SMLOCAL_IMAGE", DEFAULT_IMAGE)
        serving = serving_image or env.get("SMLOCAL_CLOUD_SERVING_IMAGE") or image
        return cls(
            state_dir=(state_dir or Path(env.get("SMLOCAL_CLOUD_DIR", str(DEFAULT_STATE_DIR))))
            .resolve(),
            port=port if port is not None else int(env.get("SMLOCAL_CLOUD_PORT", DEFAULT_PORT)),
            region=env.get("SMLOCAL_CLOUD_REGION", DEFAULT_REGION),
            image=image,
            serving_image=REFERENCE_IMAGE if serving == "reference" else serving,
            bridge_address=env.get("SMLOCAL_CLOUD_BRIDGE") or None,
            endpoint_start_timeout_s=float(env.get("SMLOCAL_CLOUD_ENDPOINT_TIMEOUT", "300")),
            invocation_timeout_s=float(env.get("SMLOCAL_CLOUD_INVOCATION_TIMEOUT", "60")),
            stop_grace_s=float(env.get("SMLOCAL_CLOUD_STOP_GRACE", "120")),
        )

    @property
    def instance_id(self) -> str:
        """Names this server's containers and networks (their label): one per state
        directory, so two servers never touch each other's."""
        return instance_id(self.state_dir)

    @property
    def loopback_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
