"""`smlocal cloud status`: the server, its training jobs and endpoints (through the API, as a
user would ask), and the containers that run them."""

from __future__ import annotations

from typing import Any

from harness.cloud import docker_engine as engine
from harness.cloud.clients import Clients
from harness.cloud.server import ServerInfo
from harness.cloud.settings import CloudSettings


def status_lines(info: ServerInfo | None, settings: CloudSettings) -> list[str]:
    if info is None:
        return ["smlocal cloud is not running"]
    lines = [f"smlocal cloud at {info.url} (pid {info.pid}; containers reach it at "
             f"{info.container_url})"]
    sagemaker: Any = Clients(info.url, settings.region).sagemaker()
    containers: dict[str, list[str]] = {}
    for container in engine.our_containers(settings.instance_id):
        name = container.labels.get(engine.NAME_LABEL, "?")
        containers.setdefault(name, []).append(
            f"{container.name} ({container.status})")
    jobs = sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    lines.append(f"training jobs: {len(jobs)}")
    for job in jobs:
        lines.append(f"  {job['TrainingJobName']}\t{job['TrainingJobStatus']}\t"
                     f"{job.get('SecondaryStatus', '')}")
        lines += [f"    {c}" for c in containers.get(job["TrainingJobName"], [])]
    endpoints = sagemaker.list_endpoints(MaxResults=100)["Endpoints"]
    lines.append(f"endpoints: {len(endpoints)}")
    for endpoint in endpoints:
        lines.append(f"  {endpoint['EndpointName']}\t{endpoint['EndpointStatus']}")
        lines += [f"    {c}" for c in containers.get(endpoint["EndpointName"], [])]
    return lines
