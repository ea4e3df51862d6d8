"""`ModelBuilder(mode=Mode.LOCAL_CONTAINER)` with the smlocal image: build -> deploy -> invoke.

3.x serves a SageMaker-contract image as it stands: with `model_server=ModelServer.TORCHSERVE`
and no model object, `build()` takes its pass-through path (model_builder.py,
`_build_validations` -> `_build_for_passthrough`), and `deploy()` runs the image with command
`serve`, the model directory mounted at /opt/ml/model, `SAGEMAKER_PROGRAM=inference.py` and
`SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code` (model_server/torchserve/server.py,
`_start_torch_serve`), then POSTs the schema's sample input to /invocations until it answers
(local_resources.py `_universal_deep_ping`). That is the contract the image implements.

What it cannot do as it stands, and what this module does about each (sagemaker-serve 1.27.0):
- It always pulls the image (mode/local_container_mode.py, `LocalContainerMode._pull_image`:
  `self.client.images.pull(image)`, for any image, present or not), and a locally built image
  has no registry: deploy fails with "Failed to pull image". `local_image_pulls()` skips the
  pull of an image the engine already has, as 3.x's own local training does for ECR images.
- `build()` names a default bucket (model_builder_utils.py `_get_serve_setting` ->
  `Session.default_bucket()`, an S3 call even when the SDK config names the bucket): an
  `s3_model_data_url` is given, and nothing is uploaded in local mode.
- `build()` checks the serving role with IAM (model_builder.py `_create_model` ->
  iam_role_resolver.py `resolve_and_validate_role`), also in local mode:
  `SAGEMAKER_VALIDATE_ROLE=false` (harness.sdk3.offline).
- It publishes the container on host port 8080, fixed (`ports={"8080/tcp": 8080}`): a busy
  8080 is refused here up front, with one line.
- `deploy()` starts the model twice: after its own container answers, `LocalEndpoint.create`
  registers the endpoint with 2.x's local session, whose `create_endpoint`
  (core/local/local_session.py -> core/local/entities.py `_LocalEndpoint.serve`) starts a
  second, compose-run container on the same port 8080. That one fails to bind (an exception in
  a background thread, logged, not raised); 2.x's health check then passes on the first one.
  `endpoint.delete()` stops only the second: the first keeps running. `deploy_local()` removes
  both, and the `sagemaker-local` network when unused.
- Its health loop pings for 1200 s whatever becomes of the container
  (`LocalContainerMode.create_server` sets `container_timeout_seconds = 1200`, overriding
  deploy()'s `container_timeout_in_seconds`), which it starts with `auto_remove=True`: a model
  that cannot load, or a container that exits, holds deploy() for 20 minutes. `failing_fast()`
  checks the container and a deadline before each ping and fails at once with one line.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import tarfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.image import DEFAULT_TAG
from harness.local_mode.cleanup import containers_under, remove_network_if_unused
from harness.sdk3.errors import Sdk3Error
from harness.sdk3.offline import OFFLINE_BUCKET, ROLE, prepare_process

# Fixed by the SDK (model_server/torchserve/server.py).
SDK_SERVING_PORT = 8080
# How long deploy_local() lets the image become healthy (the SDK's own loop: 1200 s).
DEPLOY_TIMEOUT_S = 300.0
ENDPOINT_PREFIX = "smlocal-sdk3"
BLOG_SENTENCE = "Somebody just left - guess who."


@dataclass
class DeployedEndpoint:
    name: str
    endpoint: Any  # sagemaker.serve.local_resources.LocalEndpoint
    builder: Any  # sagemaker.serve.ModelBuilder
    build_s: float
    deploy_s: float
    # The compose project of the copy 2.x's local session starts (module docstring).
    sdk_copy_root: Path | None

    def invoke(self, sentences: Sequence[str]) -> Any:
        """`Endpoint.invoke` as a 3.x user calls it; the decoded JSON answer."""
        output = self.endpoint.invoke(body=list(sentences))
        body = output.body
        raw = body.read() if isinstance(body, io.IOBase) else body
        return json.loads(raw)


def stage_model(model: Path, code_dir: Path, target: Path) -> Path:
    """The model directory 3.x mounts at /opt/ml/model: a model.tar.gz unpacked (or a directory
    copied), with the source dir under code/ as 2.x's repack puts it (S1)."""
    target.mkdir(parents=True, exist_ok=True)
    if model.is_file():
        with tarfile.open(model) as archive:
            archive.extractall(target, filter="data")
    else:
        shutil.copytree(model, target, dirs_exist_ok=True)
    shutil.copytree(code_dir, target / "code", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def image_is_local(client: Any, image: str) -> bool:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


@contextlib.contextmanager
def local_image_pulls() -> Iterator[None]:
    """While active, 3.x's local serving pulls an image only when the engine lacks it."""
    from sagemaker.serve.mode import local_container_mode

    mode = local_container_mode.LocalContainerMode
    original = mode._pull_image

    def pull_unless_local(self: Any, image: str) -> None:
        client = local_container_mode._get_docker_client()
        if image_is_local(client, image):
            self.client = client  # what the original sets before it pulls
            return
        original(self, image)

    mode._pull_image = pull_unless_local
    try:
        yield
    finally:
        mode._pull_image = original


@contextlib.contextmanager
def failing_fast(timeout_s: float) -> Iterator[None]:
    """While active, 3.x's local health check fails as soon as its container is gone or not
    running, or after `timeout_s`, instead of pinging on for 1200 s."""
    from sagemaker.serve.local_resources import LocalEndpoint

    import docker

    original = LocalEndpoint._universal_deep_ping
    deadline = time.monotonic() + timeout_s

    def checked_ping(self: Any) -> Any:
        container = getattr(self.local_container_mode_obj, "container", None)
        if container is not None:
            try:
                container.reload()
            except docker.errors.NotFound:
                raise Sdk3Error("the serving container exited before it answered (its output "
                                "is in the log above)", 1) from None
            if container.status != "running":
                raise Sdk3Error(f"the serving container is {container.status}: "
                                f"{failure_tail(container)}", 1)
        if time.monotonic() > deadline:
            raise Sdk3Error(f"the serving container did not answer within {timeout_s:.0f} s", 1)
        return original(self)

    LocalEndpoint._universal_deep_ping = checked_ping
    try:
        yield
    finally:
        LocalEndpoint._universal_deep_ping = original


def failure_tail(container: Any) -> str:
    """The last line of a stopped container's output, if it can still be read."""
    import docker

    try:
        lines = container.logs(tail=20).decode("utf-8", "replace").strip().splitlines()
    except docker.errors.APIError:
        return "(no output)"
    return lines[-1][-300:] if lines else "(no output)"


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _remove_container(container: Any) -> None:
    import docker

    with contextlib.suppress(docker.errors.APIError):
        container.remove(force=True)


def _second_container_root(endpoint_name: str) -> Path | None:
    """The compose directory of the copy 2.x's local session started for the endpoint."""
    from sagemaker.core.local.local_session import LocalSagemakerClient

    registered = LocalSagemakerClient._endpoints.get(endpoint_name)
    container = getattr(registered, "container", None)
    root = getattr(container, "container_root", None)
    return Path(root) if root else None


@contextlib.contextmanager
def deploy_local(
    model_dir: Path,
    *,
    image: str = DEFAULT_TAG,
    root: Path = Path(".smlocal") / "sdk3",
    sample: Sequence[str] = (BLOG_SENTENCE,),
    timeout_s: float = DEPLOY_TIMEOUT_S,
) -> Iterator[DeployedEndpoint]:
    """ModelBuilder.build() and deploy() of a staged model directory (stage_model) in a local
    container; everything it started is removed on exit."""
    if not port_is_free(SDK_SERVING_PORT):
        raise Sdk3Error(f"port {SDK_SERVING_PORT} is in use: SDK 3.x's local serving always "
                        f"publishes the container there", 2)
    prepare_process(root)
    from sagemaker.serve import ModelBuilder, ModelServer
    from sagemaker.serve.builder.schema_builder import SchemaBuilder
    from sagemaker.serve.mode.function_pointers import Mode

    name = f"{ENDPOINT_PREFIX}-{uuid.uuid4().hex[:10]}"
    builder = ModelBuilder(
        model_path=str(model_dir.resolve()),
        image_uri=image,
        model_server=ModelServer.TORCHSERVE,
        # The ping sends the sample input; the sample output only types the answer.
        schema_builder=SchemaBuilder(sample_input=list(sample), sample_output=[[0.0, 0.0]]),
        mode=Mode.LOCAL_CONTAINER,
        role_arn=ROLE,
        s3_model_data_url=f"s3://{OFFLINE_BUCKET}/model-builder/{name}/",
    )
    endpoint: Any = None
    second_root: Path | None = None
    try:
        with local_image_pulls(), failing_fast(timeout_s):
            started = time.perf_counter()
            builder.build(model_name=name)
            built = time.perf_counter()
            endpoint = builder.deploy(endpoint_name=name)
            deployed = time.perf_counter()
        second_root = _second_container_root(name)
        yield DeployedEndpoint(name=name, endpoint=endpoint, builder=builder,
                               build_s=built - started, deploy_s=deployed - built,
                               sdk_copy_root=second_root)
    finally:
        second_root = second_root or _second_container_root(name)
        if endpoint is not None:
            with contextlib.suppress(Exception):  # the SDK's copy may be gone already
                endpoint.delete()
        mode = getattr(builder, "modes", {}).get(str(Mode.LOCAL_CONTAINER))
        container = getattr(mode, "container", None)
        if container is not None:
            _remove_container(container)
        if second_root is not None:
            for leftover in containers_under(second_root):
                import docker

                client = docker.from_env()
                with contextlib.suppress(docker.errors.NotFound):
                    _remove_container(client.containers.get(leftover))
        remove_network_if_unused()
