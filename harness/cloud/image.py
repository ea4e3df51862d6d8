"""`smlocal cloud image`: the image the compose service `cloud` runs (docker/cloud/Dockerfile).

It is the smlocal image plus what the server needs beyond the runtime (moto's server, boto3,
the docker package, ...), pinned to this environment's versions and installed from wheels
collected on the host, so the build needs no network (as `smlocal image build`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.image import (
    DEFAULT_TAG,
    PROJECT_ROOT,
    ImageError,
    pinned_closure,
    prepare_wheelhouse,
    runtime_dependencies,
)

CLOUD_TAG = "smlocal-cloud:latest"
DOCKERFILE = Path("docker") / "cloud" / "Dockerfile"
WHEELHOUSE = Path(".smlocal") / "cloud-wheelhouse"
# What the server imports beyond the image's runtime.
SERVER_REQUIREMENTS = ("moto[server]", "boto3", "docker", "httpx", "werkzeug", "pyyaml")


def _log(message: str) -> None:
    print(f"smlocal cloud image: {message}", file=sys.stderr, flush=True)


def build_cloud_image(tag: str = CLOUD_TAG, base_image: str = DEFAULT_TAG,
                      root: Path = PROJECT_ROOT) -> str:
    """Build the cloud image on `base_image` (which must exist: `smlocal image build`)."""
    in_image = pinned_closure(runtime_dependencies(root / "pyproject.toml"))
    pins = {name: version for name, version in pinned_closure(SERVER_REQUIREMENTS).items()
            if in_image.get(name) != version}
    prepare_wheelhouse(root / WHEELHOUSE, pins, _log)
    _log(f"building {tag} on {base_image}")
    result = subprocess.run(
        ["docker", "build", "--force-rm", "--network", "none", "--build-arg",
         f"BASE_IMAGE={base_image}", "-f", str(root / DOCKERFILE), "-t", tag, str(root)],
        capture_output=True, text=True, check=False, env=dict(os.environ, DOCKER_BUILDKIT="0"))
    if result.returncode != 0:
        tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise ImageError(f"docker build of {tag} failed: {tail}")
    return tag
