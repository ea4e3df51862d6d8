"""Training jobs that run for real: CreateTrainingJob / DescribeTrainingJob / StopTrainingJob /
ListTrainingJobs (C4-C7, C12, C16, C18; T1-T14).

A job is `InstanceCount` containers of the image (`algo-1`...`algo-N`) on a private network of
their own, each started as SageMaker starts one (`train`, or ContainerEntrypoint/
ContainerArguments, C12) with `/opt/ml/input/config` written and the `s3://` channels downloaded
into `/opt/ml/input/data/<channel>`. The code (`sagemaker_submit_directory`, an s3:// URI) is NOT
copied in: the container downloads it from S3 itself (C5), at the address it is given in
AWS_ENDPOINT_URL_S3. Each host's output goes to its own CloudWatch Logs stream (C16). At the end
the hosts' `/opt/ml/model` and `/opt/ml/output` become model.tar.gz and output.tar.gz under
`<S3OutputPath>/<job>/output/` (C6), checkpoints go up to CheckpointConfig.S3Uri, and a failed
job's FailureReason is its failure file (T5).
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cloud import docker_engine as engine
from harness.cloud.clients import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, split_s3_uri
from harness.cloud.context import CloudContext
from harness.cloud.errors import in_use, not_found, validation_error
from harness.cloud.images import ImageUnavailable, resolve_image
from harness.cloud.logs import TRAINING_GROUP, LogStream, training_stream
from harness.cloud.operations import Handler, Params
from harness.cloud.protocol import now
from harness.cloud.records import Record

log = logging.getLogger("smlocal.cloud")

KIND = "training-job"
TABLE = "training_jobs"
OPT_ML = "/opt/ml"
DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"
FAILURE_REASON_CHARS = 1024  # T5
POLL_S = 0.25
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


class JobFailed(Exception):
    """The job cannot go on; the message is its FailureReason."""


@dataclass
class RunningJob:
    name: str
    stop_requested: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    containers: list[Any] = field(default_factory=list)


def relative_key(prefix: str, key: str) -> str:
    """Where an object under an S3Prefix channel lands in the channel directory."""
    if key == prefix:
        return posixpath.basename(key)
    if prefix.endswith("/") or key[len(prefix)] == "/":
        return key[len(prefix):].lstrip("/")
    # `data/train` also selects `data/train.csv`: keep the name after the prefix's folder
    return key[len(prefix.rsplit("/", 1)[0]) + 1:] if "/" in prefix else key


class TrainingJobs:
    def __init__(self, context: CloudContext) -> None:
        self.context = context
        self.table = context.records.table(TABLE)
        self.running: dict[str, RunningJob] = {}
        self._lock = threading.Lock()

    def operations(self) -> Mapping[str, Handler]:
        return {
            "CreateTrainingJob": self.create,
            "DescribeTrainingJob": self.describe,
            "StopTrainingJob": self.stop,
            "ListTrainingJobs": self.list_jobs,
        }

    # --- records ----------------------------------------------------------------------------

    def _record(self, name: str) -> Record:
        record = self.table.get(name)
        if record is None:
            raise not_found("training job", name)
        return record

    def _update(self, name: str, **changes: Any) -> None:
        with self.context.records.lock:
            record = self.table[name]
            record.update(changes)
            record["LastModifiedTime"] = now()
        self.context.records.save()

    def _secondary(self, name: str, status: str, message: str) -> None:
        with self.context.records.lock:
            record = self.table[name]
            transitions = record.setdefault("SecondaryStatusTransitions", [])
            stamp = now()
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = stamp
            transitions.append({"Status": status, "StartTime": stamp, "StatusMessage": message})
            record["SecondaryStatus"] = status
            record["LastModifiedTime"] = stamp
        self.context.records.save()

    # --- operations -------------------------------------------------------------------------

    def create(self, params: Params) -> dict[str, Any]:
        name = params["TrainingJobName"]
        algorithm = params["AlgorithmSpecification"]
        if "TrainingImage" not in algorithm:
            raise validation_error("AlgorithmSpecification.TrainingImage is required "
                                   "(algorithm resources are not emulated)")
        for channel in params.get("InputDataConfig", []):
            if "S3DataSource" not in channel["DataSource"]:
                raise validation_error(f"channel {channel['ChannelName']}: only S3DataSource "
                                       "channels are emulated")
        if params["ResourceConfig"].get("InstanceCount", 1) < 1:
            raise validation_error("ResourceConfig.InstanceCount must be at least 1")
        stamp = now()
        arn = self.context.arn(f"training-job/{name.lower()}")
        record: Record = {
            **{key: params[key] for key in (
                "AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig",
                "ResourceConfig", "StoppingCondition", "HyperParameters", "Environment",
                "CheckpointConfig", "VpcConfig", "EnableNetworkIsolation", "DebugHookConfig",
                "ProfilerConfig", "RetryStrategy", "Tags") if key in params},
            "TrainingJobName": name,
            "TrainingJobArn": arn,
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "CreationTime": stamp,
            "LastModifiedTime": stamp,
            "SecondaryStatusTransitions": [],
        }
        record.pop("Tags", None)
        with self._lock, self.context.records.lock:
            if name in self.table:
                raise in_use(f"Training job names must be unique within an AWS account and "
                             f"region, and a training job with this name already exists "
                             f"({arn})")
            self.table[name] = record
            job = RunningJob(name)
            self.running[name] = job
        self._secondary(name, "Starting", "Preparing the instances for training")
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"job-{name}",
                                      daemon=True)
        job.thread.start()
        return {"TrainingJobArn": arn}

    def describe(self, params: Params) -> dict[str, Any]:
        with self.context.records.lock:
            record = dict(self._record(params["TrainingJobName"]))
        return record

    def stop(self, params: Params) -> dict[str, Any]:
        name = params["TrainingJobName"]
        record = self._record(name)
        if record["TrainingJobStatus"] != "InProgress":
            raise validation_error(f"The request was rejected because the training job is in "
                                   f"status {record['TrainingJobStatus']}.")
        job = self.running.get(name)
        self._update(name, TrainingJobStatus="Stopping")
        self._secondary(name, "Stopping", "Stopping the training job")
        if job is not None:
            job.stop_requested.set()
        return {}

    def list_jobs(self, params: Params) -> dict[str, Any]:
        with self.context.records.lock:
            records = list(self.table.values())
        if "NameContains" in params:
            records = [r for r in records if params["NameContains"] in r["TrainingJobName"]]
        if "StatusEquals" in params:
            records = [r for r in records if r["TrainingJobStatus"] == params["StatusEquals"]]
        from botocore.utils import parse_to_aware_datetime

        if "CreationTimeAfter" in params:
            after = parse_to_aware_datetime(params["CreationTimeAfter"])
            records = [r for r in records if r["CreationTime"] > after]
        if "CreationTimeBefore" in params:
            before = parse_to_aware_datetime(params["CreationTimeBefore"])
            records = [r for r in records if r["CreationTime"] < before]
        sort_key = {"Name": "TrainingJobName", "Status": "TrainingJobStatus"}.get(
            params.get("SortBy", ""), "CreationTime")
        records.sort(key=lambda r: r[sort_key], reverse=params.get("SortOrder") != "Ascending")
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults", 10))
        page = records[start:start + size]
        summaries = [{key: r[key] for key in (
            "TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
            "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus") if key in r}
            for r in page]
        out: dict[str, Any] = {"TrainingJobSummaries": summaries}
        if start + size < len(records):
            out["NextToken"] = str(start + size)
        return out

    # --- the run ----------------------------------------------------------------------------

    def _run(self, job: RunningJob) -> None:
        name = job.name
        record = self.table[name]
        hosts = [f"algo-{i + 1}" for i in range(record["ResourceConfig"].get("InstanceCount", 1))]
        scratch = self.context.paths.scratch_dir / f"job-{name}"
        network = None
        streams: list[LogStream] = []
        status, secondary, message, reason = "Failed", "Failed", "Training job failed", ""
        try:
            image = self._image(record)
            self._secondary(name, "Downloading", "Downloading input data")
            channels = self._download_channels(record, scratch / "channels", hosts)
            checkpoints = self._download_checkpoints(record, scratch / "checkpoints")
            network = engine.engine().networks.create(
                f"smlocal-cloud-{uuid.uuid4().hex[:10]}", driver="bridge",
                labels=engine.labels(self.context.settings.instance_id, KIND, name))
            started = time.time()
            for host in hosts:
                container = self._create_host(record, image, host, hosts, network.name)
                job.containers.append(container)
                engine.put_files(container, self._config_files(record, host, hosts),
                                 f"{OPT_ML}/input/config")
                if (channels / host).is_dir():
                    engine.put_directory(container, channels / host, f"{OPT_ML}/input/data")
                if checkpoints is not None and checkpoints.is_dir():
                    engine.put_directory(container, checkpoints, self._checkpoint_dir(record))
            self._secondary(name, "Training",
                            "Training image download completed. Training in progress.")
            self._update(name, TrainingStartTime=now())
            for host, container in zip(hosts, job.containers, strict=True):
                stream = self.context.shipper.open(TRAINING_GROUP,
                                                   training_stream(name, host, started))
                streams.append(stream)
                container.start()
                self.context.shipper.follow(container, stream)
            outcome = self._wait(job, record)
            self._secondary(name, "Uploading", "Uploading generated training model")
            artifacts = self._upload_artifacts(job, record, scratch / "artifacts", hosts)
            self._update(name, ModelArtifacts={"S3ModelArtifacts": artifacts})
            if outcome == "Completed":
                status, secondary, message = "Completed", "Completed", "Training job completed"
            elif outcome in ("Stopped", "MaxRuntimeExceeded"):
                status, secondary = "Stopped", outcome
                message = ("Training job stopped" if outcome == "Stopped" else
                           "Training job stopped: it exceeded MaxRuntimeInSeconds")
            else:
                reason = outcome
        except JobFailed as exc:
            reason = str(exc)
        except ImageUnavailable as exc:
            reason = f"ClientError: {exc}"
        except Exception as exc:
            log.exception("training job %s", name)
            reason = f"InternalServerError: smlocal cloud: {type(exc).__name__}: {exc}"
        finally:
            for stream in streams:
                self.context.shipper.close(stream)
            for container in job.containers:
                engine.remove_container(container)
            if network is not None:
                engine.remove_network(network)
            shutil.rmtree(scratch, ignore_errors=True)
            self.running.pop(name, None)
        end = now()
        changes: dict[str, Any] = {"TrainingJobStatus": status, "TrainingEndTime": end}
        if reason:
            changes["FailureReason"] = reason[:FAILURE_REASON_CHARS]
            message = reason.splitlines()[0][:200]
        start_time = record.get("TrainingStartTime")
        if start_time is not None:
            seconds = max(1, int((end - start_time).total_seconds()))
            changes["TrainingTimeInSeconds"] = seconds
            # Per instance: the SDK multiplies by the instance count itself.
            changes["BillableTimeInSeconds"] = seconds
        self._secondary(name, secondary, message)
        self._update(name, **changes)
        log.info("training job %s: %s", name, status)

    def _image(self, record: Record) -> str:
        return resolve_image(record["AlgorithmSpecification"]["TrainingImage"],
                             self.context.settings.image, engine.image_exists)

    def _checkpoint_dir(self, record: Record) -> str:
        config = record.get("CheckpointConfig") or {}
        return str(config.get("LocalPath") or DEFAULT_CHECKPOINT_DIR)

    def _environment(self, record: Record, host: str) -> dict[str, str]:
        url = self.context.container_url
        env = {
            # The container's view of AWS: this server (C5) and credentials it accepts.
            "AWS_ENDPOINT_URL": url,
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
            "AWS_REGION": self.context.settings.region,
            "AWS_DEFAULT_REGION": self.context.settings.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "TRAINING_JOB_NAME": record["TrainingJobName"],
            "TRAINING_JOB_ARN": record["TrainingJobArn"],
            "CURRENT_HOST": host,
        }
        env.update(record.get("Environment") or {})
        return env

    def _create_host(self, record: Record, image: str, host: str, hosts: list[str],
                     network: str) -> Any:
        algorithm = record["AlgorithmSpecification"]
        entrypoint = algorithm.get("ContainerEntrypoint")
        arguments = algorithm.get("ContainerArguments")
        container = engine.engine().containers.create(
            image,
            command=arguments if entrypoint else ["train"],
            entrypoint=entrypoint,
            name=f"smlocal-cloud-{record['TrainingJobName'][:40]}-{host}-"
                 f"{uuid.uuid4().hex[:4]}",
            hostname=host,
            # Offline, a name the job's network does not know (torch's reverse lookups of its
            # peers, for its log) waits on the host's unreachable resolver: give up in a
            # second instead of the resolver's default 5 s per attempt.
            dns_opt=["timeout:1", "attempts:1"],
            environment=self._environment(record, host),
            labels=engine.labels(self.context.settings.instance_id, KIND,
                                 record["TrainingJobName"], host),
            network=network,
            init=True,  # tini forwards StopTrainingJob's SIGTERM to `train` (T6)
            detach=True,
        )
        # The host name other hosts resolve (T12): an alias on the job's network.
        engine.engine().networks.get(network).disconnect(container)
        engine.engine().networks.get(network).connect(container, aliases=[host])
        return container

    def _config_files(self, record: Record, host: str, hosts: list[str]) -> dict[str, bytes]:
        """T2, T3: hyperparameters.json as the SDK sent them, resourceconfig.json per host,
        inputdataconfig.json per channel."""
        resource = record["ResourceConfig"]
        instance_type = resource.get("InstanceType", "ml.m5.xlarge")
        resource_config = {
            "current_host": host,
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": hosts,
            "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                 "instance_type": instance_type, "hosts": hosts}],
            "network_interface_name": "eth0",
        }
        data_config = {}
        for channel in record.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]
            entry = {"TrainingInputMode": channel.get("InputMode") or record[
                "AlgorithmSpecification"].get("TrainingInputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None")}
            if "ContentType" in channel:
                entry["ContentType"] = channel["ContentType"]
            data_config[channel["ChannelName"]] = entry
        return {
            "hyperparameters.json": json.dumps(record.get("HyperParameters") or {}).encode(),
            "resourceconfig.json": json.dumps(resource_config).encode(),
            "inputdataconfig.json": json.dumps(data_config).encode(),
        }

    def _download_channels(self, record: Record, target: Path, hosts: list[str]) -> Path:
        """Each channel's objects under `target/<host>/<channel>/`; ShardedByS3Key gives each
        host every N-th object."""
        s3 = self.context.clients.s3()
        for channel in record.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]
            if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise JobFailed(f"ClientError: channel {channel['ChannelName']}: S3DataType "
                                f"{source.get('S3DataType')} is not emulated (S3Prefix is)")
            bucket, prefix = split_s3_uri(source["S3Uri"])
            try:
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix)
                keys = sorted(item["Key"] for page in pages for item in page.get("Contents", [])
                              if not item["Key"].endswith("/"))
            except s3.exceptions.NoSuchBucket as exc:
                raise JobFailed(f"ClientError: channel {channel['ChannelName']}: bucket "
                                f"{bucket} does not exist") from exc
            if not keys:
                raise JobFailed(f"ClientError: Data download failed: no objects under "
                                f"{source['S3Uri']} (channel {channel['ChannelName']})")
            sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
            for index, host in enumerate(hosts):
                mine = keys[index::len(hosts)] if sharded else keys
                for key in mine:
                    path = target / host / channel["ChannelName"] / relative_key(prefix, key)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(path))
        return target

    def _download_checkpoints(self, record: Record, target: Path) -> Path | None:
        """CheckpointConfig: what earlier runs left at S3Uri, put in place before the start."""
        uri = (record.get("CheckpointConfig") or {}).get("S3Uri")
        if not uri:
            return None
        s3 = self.context.clients.s3()
        bucket, prefix = split_s3_uri(uri)
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        except s3.exceptions.NoSuchBucket:
            return None
        for key in keys:
            relative = key[len(prefix):].lstrip("/")
            if not relative or relative.endswith("/"):
                continue
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(path))
        return target

    def _wait(self, job: RunningJob, record: Record) -> str:
        """Until every host exits, the job is stopped or runs out of time. Returns Completed,
        Stopped, MaxRuntimeExceeded, or the FailureReason."""
        limit = (record.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        deadline = time.monotonic() + limit if limit else None
        stopping: str | None = None
        while True:
            exits: list[int | None] = []
            for container in job.containers:
                container.reload()
                exits.append(container.attrs["State"]["ExitCode"]
                             if container.status in ("exited", "dead") else None)
            failed = [i for i, code in enumerate(exits) if code not in (None, 0)]
            if all(code is not None for code in exits):
                break
            if stopping is None and failed:
                # One host failed: the others would wait at a barrier forever.
                self._terminate(job.containers, self.context.settings.stop_grace_s)
                break
            if stopping is None and job.stop_requested.is_set():
                stopping = "Stopped"
            elif stopping is None and deadline is not None and time.monotonic() > deadline:
                stopping = "MaxRuntimeExceeded"
            if stopping is not None:
                self._terminate(job.containers, self.context.settings.stop_grace_s)
                break
            time.sleep(POLL_S)
        if stopping is not None:
            return stopping
        for container, code in zip(job.containers, exits, strict=True):
            if code not in (None, 0):
                return self._failure_reason(container, code)
        return "Completed"

    @staticmethod
    def _terminate(containers: list[Any], grace_s: float) -> None:
        """SIGTERM now, SIGKILL `grace_s` later (T6)."""
        import docker.errors

        for container in containers:
            with contextlib.suppress(docker.errors.APIError):  # already exited
                container.kill(signal="SIGTERM")
        deadline = time.monotonic() + grace_s
        for container in containers:
            try:
                container.wait(timeout=max(1.0, deadline - time.monotonic()))
            except Exception:
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()

    @staticmethod
    def _failure_reason(container: Any, code: int) -> str:
        text = engine.fetch_file(container, f"{OPT_ML}/output/failure")
        if text:
            return "AlgorithmError: " + text.decode("utf-8", "replace")
        return (f"AlgorithmError: the container exited with code {code} without writing "
                f"{OPT_ML}/output/failure")

    def _upload_artifacts(self, job: RunningJob, record: Record, staging: Path,
                          hosts: list[str]) -> str:
        """model.tar.gz and output.tar.gz at `<S3OutputPath>/<job>/output/` (C6): every host's
        directory merged, algo-1 last so the leader's files win; checkpoints to their S3Uri."""
        s3 = self.context.clients.s3()
        name = record["TrainingJobName"]
        bucket, prefix = split_s3_uri(record["OutputDataConfig"]["S3OutputPath"].rstrip("/"))
        base = "/".join(part for part in (prefix, name, "output") if part)
        ordered: list[tuple[str, Any]] = list(reversed(list(zip(hosts, job.containers,
                                                                strict=True))))
        for directory, archive in (("model", "model.tar.gz"), ("output", "output.tar.gz")):
            merged = staging / directory
            for _host, container in ordered:
                engine.fetch_directory(container, f"{OPT_ML}/{directory}", merged)
            local = engine.tar_gz(merged, staging / archive)
            s3.upload_file(str(local), bucket, f"{base}/{archive}")
        checkpoint_uri = (record.get("CheckpointConfig") or {}).get("S3Uri")
        if checkpoint_uri:
            merged = staging / "checkpoints"
            for _host, container in ordered:
                engine.fetch_directory(container, self._checkpoint_dir(record), merged)
            ck_bucket, ck_prefix = split_s3_uri(checkpoint_uri.rstrip("/"))
            for path in sorted(merged.rglob("*")):
                if path.is_file():
                    key = "/".join(p for p in (ck_prefix, str(path.relative_to(merged))) if p)
                    s3.upload_file(str(path), ck_bucket, key)
        return f"s3://{bucket}/{base}/model.tar.gz"

    def interrupt_all(self) -> None:
        """Shutdown: stop every running job (its record ends Stopped)."""
        for job in list(self.running.values()):
            job.stop_requested.set()
        for job in list(self.running.values()):
            if job.thread is not None:
                job.thread.join(timeout=self.context.settings.stop_grace_s + 60)

    def recover(self) -> None:
        """After a restart, a job that was running is gone with its containers."""
        changed = False
        with self.context.records.lock:
            for record in self.table.values():
                if record["TrainingJobStatus"] not in TERMINAL:
                    record["TrainingJobStatus"] = "Stopped"
                    record["SecondaryStatus"] = "Stopped"
                    record["FailureReason"] = "smlocal cloud stopped while the job ran"
                    changed = True
        if changed:
            self.context.records.save()

