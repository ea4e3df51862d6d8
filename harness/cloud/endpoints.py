"""Models, endpoint configs and endpoints that run for real (C8, C10, C13).

CreateEndpoint starts, for each production variant, `InitialInstanceCount` containers of the
model's image (`serve`, the model's Environment), with the model archive from S3 unpacked into
`/opt/ml/model` by the engine itself (put_archive takes a .tar.gz), the port published on
loopback only. The endpoint is `InService` once every container answers `/ping` 200, `Failed`
with the reason (the container log's last lines) when one exits or never gets healthy. Each
instance logs to `/aws/sagemaker/Endpoints/<name>`, stream `<variant>/<instance id>` (C16).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cloud import docker_engine as engine
from harness.cloud.clients import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, split_s3_uri
from harness.cloud.context import CloudContext
from harness.cloud.errors import not_found, validation_error
from harness.cloud.images import ImageUnavailable, resolve_image
from harness.cloud.logs import LogStream, endpoint_group
from harness.cloud.multi_model import ENVIRONMENT as MULTI_MODEL_ENVIRONMENT
from harness.cloud.multi_model import (
    MODELS_DIR,
    LoadedTargets,
    TargetError,
    container_model_name,
    directory_entries,
    download_target,
    is_multi_model,
    target_uri,
)
from harness.cloud.operations import Handler, Params
from harness.cloud.protocol import now
from harness.cloud.records import Record
from harness.cloud.settings import REFERENCE_IMAGE
from harness.local_mode.watch import load_failure

log = logging.getLogger("smlocal.cloud")

KIND = "endpoint"
MODEL_DIR = "/opt/ml/model"
SERVING_PORT = "8080/tcp"
PING_INTERVAL_S = 0.25
LOAD_PROBE_INTERVAL_S = 1.0
LOG_LINES_IN_REASON = 15
# The toolkit (2.0.25) appends its settings to its mme-ts.properties, which lacks a final
# newline: the generated /etc/sagemaker-ts.properties reads `enable_model_api=truedefault_
# response_timeout=60`, so TorchServe keeps its model API off and answers POST /models 405.
# The generated file turns on enable_envvars_config, so this variable puts the API back.
REFERENCE_MULTI_MODEL_ENVIRONMENT = {"TS_ENABLE_MODEL_API": "true"}
# The name the SageMaker PyTorch toolkit registers the model under in TorchServe.
TORCHSERVE_MODEL = "model"
# A target's load (model_fn in the container's workers) may take this long.
LOAD_TIMEOUT_S = 300.0


@dataclass
class Instance:
    """One container of a variant."""

    instance_id: str
    container: Any
    port: int
    stream: LogStream
    image: str = ""
    multi_model: bool = False
    # Multi-model endpoints: the targets this container was asked to load.
    targets: LoadedTargets = field(default_factory=LoadedTargets)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Variant:
    name: str
    weight: float
    instances: list[Instance] = field(default_factory=list)
    # A multi-model variant's S3 prefix (its model's ModelDataUrl); None: one model.
    model_data_prefix: str | None = None
    turn: itertools.count[int] = field(default_factory=itertools.count)

    def next_instance(self) -> Instance:
        return self.instances[next(self.turn) % len(self.instances)]


@dataclass
class LiveEndpoint:
    name: str
    variants: list[Variant] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def all_instances(self) -> list[Instance]:
        return [instance for variant in self.variants for instance in variant.instances]


class LaunchFailed(Exception):
    """The endpoint cannot serve; the message is its FailureReason."""


class Endpoints:
    def __init__(self, context: CloudContext) -> None:
        self.context = context
        self.models = context.records.table("models")
        self.configs = context.records.table("endpoint_configs")
        self.endpoints = context.records.table("endpoints")
        self.live: dict[str, LiveEndpoint] = {}
        self._lock = threading.Lock()

    def operations(self) -> Mapping[str, Handler]:
        return {
            "CreateModel": self.create_model,
            "DescribeModel": self.describe_model,
            "DeleteModel": self.delete_model,
            "ListModels": self.list_models,
            "CreateEndpointConfig": self.create_config,
            "DescribeEndpointConfig": self.describe_config,
            "DeleteEndpointConfig": self.delete_config,
            "ListEndpointConfigs": self.list_configs,
            "CreateEndpoint": self.create_endpoint,
            "DescribeEndpoint": self.describe_endpoint,
            "DeleteEndpoint": self.delete_endpoint,
            "ListEndpoints": self.list_endpoints,
        }

    # --- models -----------------------------------------------------------------------------

    def create_model(self, params: Params) -> dict[str, Any]:
        name = params["ModelName"]
        containers = params.get("Containers") or []
        primary = params.get("PrimaryContainer") or (containers[0] if len(containers) == 1
                                                     else None)
        if primary is None:
            raise validation_error("a model needs PrimaryContainer (or exactly one entry in "
                                   "Containers: inference pipelines are not emulated)")
        if "Image" not in primary:
            raise validation_error("PrimaryContainer.Image is required")
        if is_multi_model(primary) and not str(primary.get("ModelDataUrl", "")).startswith(
                "s3://"):
            raise validation_error("a MultiModel container needs ModelDataUrl: the S3 prefix "
                                   "its models are under")
        arn = self.context.arn(f"model/{name.lower()}")
        record: Record = {"ModelName": name, "ModelArn": arn, "CreationTime": now(),
                          "PrimaryContainer": dict(primary)}
        for key in ("ExecutionRoleArn", "EnableNetworkIsolation", "VpcConfig"):
            if key in params:
                record[key] = params[key]
        self._insert(self.models, name, record,
                     f'Cannot create already existing model "{arn}".')
        return {"ModelArn": arn}

    def describe_model(self, params: Params) -> dict[str, Any]:
        return dict(self._get(self.models, "model", params["ModelName"]))

    def delete_model(self, params: Params) -> dict[str, Any]:
        self._delete(self.models, "model", params["ModelName"])
        return {}

    def list_models(self, params: Params) -> dict[str, Any]:
        return _page(params, self.models, "Models", "ModelName",
                     ("ModelName", "ModelArn", "CreationTime"))

    # --- endpoint configs -------------------------------------------------------------------

    def create_config(self, params: Params) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        for variant in params["ProductionVariants"]:
            if "ServerlessConfig" not in variant and not variant.get("InitialInstanceCount"):
                raise validation_error(f"variant {variant['VariantName']}: "
                                       "InitialInstanceCount is required")
        arn = self.context.arn(f"endpoint-config/{name.lower()}")
        record: Record = {"EndpointConfigName": name, "EndpointConfigArn": arn,
                          "ProductionVariants": [dict(v) for v in params["ProductionVariants"]],
                          "CreationTime": now()}
        for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig"):
            if key in params:
                record[key] = params[key]
        self._insert(self.configs, name, record,
                     f'Cannot create already existing endpoint configuration "{arn}".')
        return {"EndpointConfigArn": arn}

    def describe_config(self, params: Params) -> dict[str, Any]:
        return dict(self._get(self.configs, "endpoint configuration",
                              params["EndpointConfigName"]))

    def delete_config(self, params: Params) -> dict[str, Any]:
        self._delete(self.configs, "endpoint configuration", params["EndpointConfigName"])
        return {}

    def list_configs(self, params: Params) -> dict[str, Any]:
        return _page(params, self.configs, "EndpointConfigs", "EndpointConfigName",
                     ("EndpointConfigName", "EndpointConfigArn", "CreationTime"))

    # --- endpoints --------------------------------------------------------------------------

    def create_endpoint(self, params: Params) -> dict[str, Any]:
        name = params["EndpointName"]
        config = self._get(self.configs, "endpoint configuration", params["EndpointConfigName"])
        for variant in config["ProductionVariants"]:
            self._get(self.models, "model", variant["ModelName"])
        arn = self.context.arn(f"endpoint/{name.lower()}")
        stamp = now()
        record: Record = {"EndpointName": name, "EndpointArn": arn,
                          "EndpointConfigName": config["EndpointConfigName"],
                          "EndpointStatus": "Creating", "CreationTime": stamp,
                          "LastModifiedTime": stamp}
        self._insert(self.endpoints, name, record,
                     f'Cannot create already existing endpoint "{arn}".')
        self._launch(name)
        return {"EndpointArn": arn}

    def describe_endpoint(self, params: Params) -> dict[str, Any]:
        return dict(self._get(self.endpoints, "endpoint", params["EndpointName"]))

    def delete_endpoint(self, params: Params) -> dict[str, Any]:
        name = params["EndpointName"]
        self._delete(self.endpoints, "endpoint", name)
        with self._lock:
            live = self.live.pop(name, None)
        if live is not None:
            live.cancelled.set()
            threading.Thread(target=self._tear_down, args=(live,), daemon=True).start()
        return {}

    def list_endpoints(self, params: Params) -> dict[str, Any]:
        return _page(params, self.endpoints, "Endpoints", "EndpointName",
                     ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime",
                      "EndpointStatus"))

    # --- what the runtime asks --------------------------------------------------------------

    def route(self, name: str, target_variant: str | None) -> tuple[Variant, Instance] | None:
        """The instance that answers the next invocation, or None if the endpoint does not
        serve (unknown, or not InService)."""
        record = self.endpoints.get(name)
        live = self.live.get(name)
        if record is None or live is None or record["EndpointStatus"] != "InService":
            return None
        variants = [v for v in live.variants if v.instances]
        if target_variant:
            variants = [v for v in variants if v.name == target_variant]
        if not variants:
            return None
        variant = random.choices(variants, weights=[max(v.weight, 1e-9) for v in variants])[0]
        return variant, variant.next_instance()

    def load_target(self, endpoint_name: str, variant: Variant, instance: Instance,
                    target: str,
                    *, again: bool = False) -> str:
        """The name `target` (a key under the variant's prefix) has in the container, after
        downloading, unpacking and loading it there on first use (or `again`, when the
        container no longer has it). Raises TargetError."""
        assert variant.model_data_prefix is not None
        known = instance.targets.names.get(target)
        if known is not None and not again:
            return known  # no lock: a loaded target does not wait for another one's download
        with instance.targets.lock:
            name = instance.targets.names.get(target)
            if name is not None and not again:
                return name
            name = container_model_name(target)
            uri = target_uri(variant.model_data_prefix, target)
            archive = download_target(self.context.clients.s3(), uri,
                                      self.context.paths.scratch_dir)
            try:
                home = f"{MODELS_DIR}/{name}"
                instance.container.put_archive(MODELS_DIR,
                                               directory_entries(name, f"{name}/model"))
                with archive.open("rb") as data:
                    instance.container.put_archive(f"{home}/model", data)
            finally:
                shutil.rmtree(archive.parent, ignore_errors=True)
            answer = _post_json(f"{instance.url}/models",
                                {"model_name": name, "url": f"{home}/model"})
            # 409: the container still has it (it was loaded before a restart of ours).
            if answer[0] not in (200, 409):
                raise TargetError(
                    "ModelError", 424,
                    f"Received server error ({answer[0]}) from primary with message "
                    f"\"{answer[1]}\" while loading model {target}. See the log group "
                    f"{self.log_group_arn(endpoint_name)} for more information.",
                    OriginalStatusCode=answer[0], OriginalMessage=answer[1])
            log.info("multi-model endpoint: %s loaded as %s on %s", uri, name,
                     instance.instance_id)
            instance.targets.names[target] = name
            return name

    def log_group_arn(self, name: str) -> str:
        return self.context.log_group_arn(endpoint_group(name))

    # --- lifecycle --------------------------------------------------------------------------

    def _launch(self, name: str) -> None:
        live = LiveEndpoint(name)
        with self._lock:
            self.live[name] = live
        threading.Thread(target=self._start, args=(live,), name=f"endpoint-{name}",
                         daemon=True).start()

    def _start(self, live: LiveEndpoint) -> None:
        name = live.name
        record = self.endpoints[name]
        config = self.configs[record["EndpointConfigName"]]
        deployed: list[dict[str, Any]] = []
        try:
            for spec in config["ProductionVariants"]:
                model = self.models[spec["ModelName"]]
                variant = Variant(spec["VariantName"],
                                  float(spec.get("InitialVariantWeight", 1.0)))
                if is_multi_model(model["PrimaryContainer"]):
                    variant.model_data_prefix = model["PrimaryContainer"]["ModelDataUrl"]
                live.variants.append(variant)
                image = resolve_image(model["PrimaryContainer"]["Image"],
                                      self.context.settings.serving_image, engine.image_exists)
                for _ in range(int(spec.get("InitialInstanceCount", 1))):
                    variant.instances.append(self._start_instance(live, variant, model, image))
                deployed.append({
                    "VariantName": variant.name,
                    "DeployedImages": [{"SpecifiedImage": model["PrimaryContainer"]["Image"],
                                        "ResolvedImage": image, "ResolutionTime": now()}],
                    "CurrentWeight": variant.weight, "DesiredWeight": variant.weight,
                    "CurrentInstanceCount": len(variant.instances),
                    "DesiredInstanceCount": len(variant.instances),
                })
            for instance in live.all_instances():
                self._wait_healthy(live, instance)
        except (LaunchFailed, ImageUnavailable) as exc:
            self._finish(live, "Failed", str(exc))
            return
        except Exception as exc:
            log.exception("endpoint %s", name)
            self._finish(live, "Failed", f"smlocal cloud: {type(exc).__name__}: {exc}")
            return
        self._finish(live, "InService", None, deployed)

    def _finish(self, live: LiveEndpoint, status: str, reason: str | None,
                variants: list[dict[str, Any]] | None = None) -> None:
        if status == "Failed" and not live.cancelled.is_set():
            # Gone before the status says Failed: a caller who sees Failed sees no container.
            with self._lock:
                self.live.pop(live.name, None)
            self._tear_down(live)
        with self.context.records.lock:
            record = self.endpoints.get(live.name)
            if record is None or live.cancelled.is_set():
                return  # deleted meanwhile: _tear_down removes what was started
            record["EndpointStatus"] = status
            record["LastModifiedTime"] = now()
            if reason:
                record["FailureReason"] = reason[:1024]
            if variants:
                record["ProductionVariants"] = variants
        self.context.records.save()
        log.info("endpoint %s: %s%s", live.name, status, f" ({reason})" if reason else "")

    def _start_instance(self, live: LiveEndpoint, variant: Variant, model: Record,
                        image: str) -> Instance:
        primary = model["PrimaryContainer"]
        instance_id = f"i-{uuid.uuid4().hex[:17]}"
        url = self.context.container_url
        env = {"AWS_ENDPOINT_URL": url, "AWS_REGION": self.context.settings.region,
               "AWS_DEFAULT_REGION": self.context.settings.region,
               "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
               "AWS_EC2_METADATA_DISABLED": "true",
               **(MULTI_MODEL_ENVIRONMENT if is_multi_model(primary) else {}),
               **(REFERENCE_MULTI_MODEL_ENVIRONMENT
                  if is_multi_model(primary) and image == REFERENCE_IMAGE else {}),
               **(primary.get("Environment") or {})}
        container = engine.engine().containers.create(
            image, command=["serve"], environment=env,
            name=f"smlocal-cloud-{live.name[:40]}-{instance_id}",
            labels=engine.labels(self.context.settings.instance_id, KIND, live.name,
                                 instance_id),
            ports={SERVING_PORT: ("127.0.0.1", None)}, init=True, detach=True)
        stream = self.context.shipper.open(endpoint_group(live.name),
                                           f"{variant.name}/{instance_id}")
        try:
            if is_multi_model(primary):
                # No model at start; targets are unpacked under /opt/ml/models on first use.
                container.put_archive(str(Path(MODELS_DIR).parent),
                                      directory_entries(Path(MODELS_DIR).name))
            elif primary.get("ModelDataUrl"):
                self._put_model(container, primary["ModelDataUrl"], live.name)
            container.start()
            self.context.shipper.follow(container, stream)
            container.reload()
            port = int(container.ports[SERVING_PORT][0]["HostPort"])
        except BaseException:
            engine.remove_container(container)
            self.context.shipper.close(stream)
            raise
        return Instance(instance_id, container, port, stream, image, is_multi_model(primary))

    def _put_model(self, container: Any, model_data_url: str, name: str) -> None:
        """The model archive, unpacked into /opt/ml/model by the engine (gzip tar in)."""
        bucket, key = split_s3_uri(model_data_url)
        s3 = self.context.clients.s3()
        staging = self.context.paths.scratch_dir / f"endpoint-{name}-{uuid.uuid4().hex[:6]}"
        staging.mkdir(parents=True, exist_ok=True)
        try:
            archive = staging / "model.tar.gz"
            try:
                s3.download_file(bucket, key, str(archive))
            except Exception as exc:
                raise LaunchFailed(f"Could not download model data from {model_data_url}: "
                                   f"{exc}") from exc
            with archive.open("rb") as data:
                container.put_archive(MODEL_DIR, data)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _wait_healthy(self, live: LiveEndpoint, instance: Instance) -> None:
        deadline = time.monotonic() + self.context.settings.endpoint_start_timeout_s
        probe_at = time.monotonic() + LOAD_PROBE_INTERVAL_S
        while not live.cancelled.is_set():
            if _ping(instance.url) == 200 and (instance.image != REFERENCE_IMAGE
                                               or instance.multi_model
                                               or _torchserve_workers_ready(instance.url)):
                return
            if time.monotonic() > probe_at:
                # /ping is 500 while loading and after a failed load; the smlocal image tells
                # them apart on /invocations (503 "the model failed to load: ...").
                probe_at = time.monotonic() + LOAD_PROBE_INTERVAL_S
                if (failure := load_failure(instance.port)) is not None:
                    raise LaunchFailed(self._reason(
                        instance, f"could not load the model: {failure}"))
            instance.container.reload()
            if instance.container.status in ("exited", "dead"):
                raise LaunchFailed(self._reason(instance, "exited with code "
                                                f"{instance.container.attrs['State']['ExitCode']}"))
            if time.monotonic() > deadline:
                raise LaunchFailed(self._reason(
                    instance, f"did not pass the ping health check within "
                    f"{self.context.settings.endpoint_start_timeout_s:.0f} s"))
            time.sleep(PING_INTERVAL_S)

    def _reason(self, instance: Instance, what: str) -> str:
        self.context.shipper.flush()
        tail = instance.stream.last_lines(LOG_LINES_IN_REASON)
        return (f"The primary container for production variant "
                f"{instance.stream.name.split('/')[0]} {what}. Its last log lines "
                f"({instance.stream.group}):\n{tail}")

    def _tear_down(self, live: LiveEndpoint) -> None:
        for instance in live.all_instances():
            engine.remove_container(instance.container)
            self.context.shipper.close(instance.stream)

    def restore(self) -> None:
        """After a restart: every endpoint that was InService or Creating starts again."""
        for name, record in list(self.endpoints.items()):
            if record["EndpointStatus"] in ("InService", "Creating", "Updating"):
                record["EndpointStatus"] = "Creating"
                record.pop("ProductionVariants", None)
                self._launch(name)
        self.context.records.save()

    def shut_down(self) -> None:
        with self._lock:
            lives = list(self.live.values())
            self.live.clear()
        for live in lives:
            live.cancelled.set()
            self._tear_down(live)

    # --- helpers ----------------------------------------------------------------------------

    def _insert(self, table: dict[str, Record], name: str, record: Record, exists: str) -> None:
        with self.context.records.lock:
            if name in table:
                raise validation_error(exists)
            table[name] = record
        self.context.records.save()

    def _get(self, table: dict[str, Record], kind: str, name: str) -> Record:
        with self.context.records.lock:
            record = table.get(name)
        if record is None:
            raise not_found(kind, name)
        return record

    def _delete(self, table: dict[str, Record], kind: str, name: str) -> None:
        with self.context.records.lock:
            if table.pop(name, None) is None:
                raise not_found(kind, name)
        self.context.records.save()


def _post_json(url: str, body: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=LOAD_TIMEOUT_S) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        return 0, str(exc)


def _torchserve_workers_ready(url: str) -> bool:
    """The reference image (TorchServe) answers /ping 200 before model_fn has run
    (docs/fidelity.md F5): it is ready when its management API, on the same port, lists every
    worker of the toolkit's model `model` as READY."""
    try:
        with urllib.request.urlopen(f"{url}/models/{TORCHSERVE_MODEL}", timeout=2) as response:
            described: Any = json.loads(response.read())
        states = [worker.get("status") for worker in described[0]["workers"]]
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError,
            LookupError, TypeError, AttributeError):
        return False
    return bool(states) and all(state == "READY" for state in states)


def _ping(url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def _page(params: Params, table: dict[str, Record], key: str, name_key: str,
          fields: tuple[str, ...]) -> dict[str, Any]:
    records = sorted(table.values(), key=lambda r: r["CreationTime"],
                     reverse=params.get("SortOrder") != "Ascending")
    if "NameContains" in params:
        records = [r for r in records if params["NameContains"] in r[name_key]]
    if "StatusEquals" in params:
        records = [r for r in records if r.get("EndpointStatus") == params["StatusEquals"]]
    start = int(params.get("NextToken") or 0)
    size = int(params.get("MaxResults", 10))
    out: dict[str, Any] = {key: [{f: r[f] for f in fields if f in r}
                                 for r in records[start:start + size]]}
    if start + size < len(records):
        out["NextToken"] = str(start + size)
    return out
