"""`deploy()` / `predict()` / `delete_endpoint()` through the SageMaker SDK in local mode.

The SDK repacks model.tar.gz with the source dir under `code/`, mounts it at `/opt/ml/model` and
runs `serve` with port `<port>:8080` (L5). It polls `/ping` every 5 s until the container
answers; `deploy(wait=True)` then sleeps a fixed 30 s more (L6), which `wait=False` skips. With
`wait=False` this module polls `/ping` itself every 0.1 s (harness.local_mode.watch) and returns
on the first 200, the SDK's own readiness rule, without waiting for its next 5 s poll.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.image import DEFAULT_TAG
from harness.local_mode.cleanup import (
    remove_exited_containers,
    remove_interrupted,
    remove_network_if_unused,
)
from harness.local_mode.errors import LocalModeError
from harness.local_mode.session import (
    CODE_LOCATION,
    FRAMEWORK_VERSION,
    PY_VERSION,
    ROLE,
    offline_session,
)
from harness.local_mode.signals import interruptible
from harness.local_mode.training import new_job_name
from harness.local_mode.watch import run_watching

DEFAULT_PORT = 8080
SDK_POLL_S = 5.0  # the SDK's /ping interval while deploy() waits (L6)
# S28: SDK local mode sets SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT=true for this accelerator.
LOCAL_ACCELERATOR = "local_sagemaker_notebook"
OS_ERROR = re.compile(r"\[Errno \d+\] ([^\"')]+)")


@dataclass
class LocalEndpoint:
    """A running local endpoint and the SDK predictor that talks to it (JSON in, JSON out)."""

    predictor: Any  # sagemaker.predictor.Predictor
    port: int
    deploy_s: float
    staging: Path  # the copy of model.tar.gz the SDK repacked
    root: Path | None = None  # the SDK's container_root: this endpoint's compose project
    # The SDK's deploy() call when it was still polling /ping as the endpoint became ready.
    sdk_call: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return str(self.predictor.endpoint_name)

    def predict(self, data: Any) -> Any:
        return self.predictor.predict(data)

    def delete(self) -> None:
        """Stop the container (the SDK stops compose), forget the model and the endpoint, and
        remove the stopped container and the network the SDK leaves behind (L4)."""
        if self.sdk_call is not None:
            # Its next poll sees the ready container and ends it; deleting first would leave it
            # polling a stopped one for the SDK's whole timeout.
            self.sdk_call.join(SDK_POLL_S + 1.0)
        self.predictor.delete_model()  # it finds the model through the endpoint config
        self.predictor.delete_endpoint(delete_endpoint_config=True)
        if self.root is not None:
            # The SDK only terminates compose: its container may still be stopping.
            remove_interrupted(self.root)
        remove_exited_containers()
        remove_network_if_unused()
        shutil.rmtree(self.staging, ignore_errors=True)


def json_predictor(endpoint_name: str, session: Any) -> Any:
    """The blog's predictor: a JSON serializer and deserializer (application/json both ways)."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    return Predictor(endpoint_name, sagemaker_session=session,
                     serializer=JSONSerializer(), deserializer=JSONDeserializer())


def deploy(
    model_data: Path,
    *,
    code_dir: Path = Path("handlers"),
    entry_point: str = "inference.py",
    image: str = DEFAULT_TAG,
    port: int = DEFAULT_PORT,
    accelerator_type: str | None = None,
    environment: Mapping[str, str] | None = None,
    root: Path,
    wait: bool = False,
    sdk_poll: bool = False,
) -> LocalEndpoint:
    """Serve `model_data` (a model.tar.gz) with `entry_point` from `code_dir` on one local
    container; return when `/ping` answers 200 (`wait=True`: the SDK's default, 30 s later).

    `sdk_poll`: wait for the SDK's own 5 s poll to see the 200 (the benchmarks' reference)."""
    if not model_data.is_file():
        raise LocalModeError(f"model archive {model_data} not found (run fit first)", 2)
    if not (code_dir / entry_point).is_file():
        raise LocalModeError(f"entry point {code_dir / entry_point} not found", 2)
    refuse_busy_port(port)
    session = offline_session(root, serving_port=port)

    from sagemaker.pytorch import PyTorchModel

    endpoint_name = new_job_name("smlocal-endpoint")
    started = time.perf_counter()
    # With local code the SDK repacks a file:// model.tar.gz in place, adding code/ (a crash
    # mid-write would corrupt it): it gets a copy, and the trained artifact stays as it was.
    staging = (root / "models" / endpoint_name).resolve()
    staging.mkdir(parents=True)
    staged_model = staging / "model.tar.gz"
    shutil.copyfile(model_data, staged_model)
    model = PyTorchModel(
        model_data=f"file://{staged_model}",
        image_uri=image,
        role=ROLE,
        entry_point=entry_point,
        source_dir=str(code_dir.resolve()),
        framework_version=FRAMEWORK_VERSION,
        py_version=PY_VERSION,
        code_location=CODE_LOCATION,
        env=dict(environment or {}),
        sagemaker_session=session,
    )
    try:
        with interruptible():
            sdk_call = run_watching(lambda: model.deploy(
                initial_instance_count=1,
                instance_type="local",
                accelerator_type=accelerator_type,
                endpoint_name=endpoint_name,
                wait=wait,
            ), port, ready_on_ping=not (wait or sdk_poll))
    except BaseException as exc:  # a failed load, "Giving up, endpoint didn't ...", Ctrl-C ...
        # The SDK registers the endpoint before starting it, and its compose thread keeps this
        # process alive until the endpoint is stopped: stop it on every way out.
        with contextlib.suppress(Exception):  # not registered yet: nothing to delete
            session.sagemaker_client.delete_endpoint(EndpointName=endpoint_name)
        remove_interrupted(root)
        remove_exited_containers()
        remove_network_if_unused()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, LocalModeError):
            raise
        if isinstance(exc, Exception):
            raise LocalModeError(f"the local endpoint did not start: {exc}") from exc
        raise
    return LocalEndpoint(predictor=json_predictor(endpoint_name, session), port=port,
                         deploy_s=time.perf_counter() - started, staging=staging, root=root,
                         sdk_call=sdk_call)


def refuse_busy_port(port: int) -> None:
    """Fail fast on a port in use: the SDK binds it on all interfaces (L5) and would otherwise
    take another server's `/ping` for its own container's."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As Docker's proxy binds: connections of a previous endpoint in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            raise LocalModeError(
                f"port {port} is in use ({exc.strerror}); stop what serves it or choose --port",
                2,
            ) from exc


def predict_json(data: Any, *, port: int, root: Path) -> Any:
    """`predictor.predict(data)` on the local endpoint at `port`, from any process: the local
    runtime client posts to the port and ignores the endpoint name (L7)."""
    import urllib3

    session = offline_session(root, serving_port=port)
    try:
        return json_predictor("local-endpoint", session).predict(data)
    except urllib3.exceptions.HTTPError as exc:
        cause = OS_ERROR.search(str(exc))
        raise LocalModeError(
            f"no endpoint answers on port {port} ({cause.group(1) if cause else exc}); "
            "start one with `smlocal local-mode deploy`"
        ) from exc
