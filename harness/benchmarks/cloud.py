"""`smlocal cloud` against the SDK's own floors (C7, C8) and against `smlocal local-mode fit`
on the same job.

    python -m harness.benchmarks.cloud --data .smlocal/data/cola --instance-count 2

One run, in this order: local-mode `fit()` (the reference: same data, hosts, hyperparameters,
image), then, against a cloud server started in this process, the blog's cloud-mode
`upload_data` + `PyTorch(...).fit()` (logs on, as the notebook does), `deploy()` (wait=True: the
SDK sleeps 30 s before its first DescribeEndpoint, C8) and one `predict()`. For fit and deploy it
prints the wall time, the time the server needed (CreateTrainingJob to TrainingEndTime,
CreateEndpoint to InService) and the rest, which is the SDK's own waiting (C7, C8).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.bench.workload import BLOG_SENTENCE
from harness.cloud.environment import environment
from harness.cloud.server import CloudServer
from harness.cloud.settings import CloudSettings
from harness.image import DEFAULT_TAG
from harness.local_mode.training import BLOG_HYPERPARAMETERS, fit
from harness.train import CHANNEL_FILES, sdk_value

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"
DEPLOY_FLOOR_S = 30.0  # C8: deploy() sleeps this long before it first asks


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _line(step: str, wall: float, server: float | None, reference: float | None,
          detail: str) -> None:
    server_text = f"{server:.1f}" if server is not None else "-"
    rest = f"{wall - server:.1f}" if server is not None else "-"
    ratio = f"{wall / reference:.2f}x" if reference else "-"
    print(f"| {step} | {wall:.1f} | {server_text} | {rest} | {ratio} | {detail} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(".smlocal/data/cola"))
    parser.add_argument("--code", type=Path, default=Path("handlers"))
    parser.add_argument("--image", default=DEFAULT_TAG)
    parser.add_argument("--instance-count", type=int, default=2)
    parser.add_argument("-H", "--hyperparameter", action="append", default=[],
                        metavar="KEY=VALUE", help="added to the blog's hyperparameters")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="smlocal-bench-cloud-"))
    cores = os.cpu_count() or 1
    hosts = args.instance_count
    hyperparameters: dict[str, Any] = {**BLOG_HYPERPARAMETERS,
                                       "num-threads": max(1, cores // hosts)}
    hyperparameters.update({key: sdk_value(value) for key, value in
                            (item.split("=", 1) for item in args.hyperparameter)})
    channels = {c: args.data / name for c, name in CHANNEL_FILES.items()
                if (args.data / name).is_file()}
    print(f"data {args.data} (channels {', '.join(channels)}), {hosts} host(s), {cores} cores, "
          f"hyperparameters {hyperparameters}", flush=True)
    print("| step | wall s | smlocal s | SDK waiting s | vs local mode | detail |\n"
          "|---|---:|---:|---:|---:|---|", flush=True)

    local = fit(args.data, code_dir=args.code, image=args.image, instance_count=hosts,
                hyperparameters=hyperparameters, root=work / "local-mode")
    _line(f"`fit()` local mode, {hosts} host(s) (reference)", local.wall_s, None, None,
          "the SDK's compose run")

    settings = dataclasses.replace(
        CloudSettings.from_environ({}, port=_free_port(), state_dir=work / "cloud"),
        image=args.image)
    server = CloudServer(settings)
    server.start()
    saved = dict(os.environ)
    os.environ.update(environment(settings.loopback_url, settings.region,
                                  server.paths.sdk_config))
    try:
        import sagemaker
        from sagemaker.deserializers import JSONDeserializer
        from sagemaker.pytorch import PyTorch
        from sagemaker.serializers import JSONSerializer

        session = sagemaker.Session()
        bucket = session.default_bucket()
        inputs = {}
        for channel, path in channels.items():
            session.upload_data(str(path), bucket=bucket, key_prefix=f"bench/{channel}")
            inputs[channel] = f"s3://{bucket}/bench/{channel}"
        estimator = PyTorch(entry_point="train.py", source_dir=str(args.code), role=ROLE,
                            framework_version="1.3.1", py_version="py3",
                            instance_count=hosts, instance_type="ml.m5.xlarge",
                            hyperparameters=hyperparameters, sagemaker_session=session)
        started = time.perf_counter()
        estimator.fit(inputs)
        fit_s = time.perf_counter() - started
        job = estimator.latest_training_job.describe()
        job_s = (job["TrainingEndTime"] - job["CreationTime"]).total_seconds()
        _line("cloud `fit()` (logs on)", fit_s, job_s, local.wall_s,
              f"job {job_s:.1f} s inside smlocal vs local mode {local.wall_s:.1f} s "
              f"({job_s / local.wall_s:.2f}x)")

        started = time.perf_counter()
        deploy_start = datetime.datetime.now(datetime.UTC)
        predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.xlarge",
                                     serializer=JSONSerializer(),
                                     deserializer=JSONDeserializer())
        deploy_s = time.perf_counter() - started
        endpoint = session.sagemaker_client.describe_endpoint(
            EndpointName=predictor.endpoint_name)
        ready_s = (endpoint["LastModifiedTime"] - endpoint["CreationTime"]).total_seconds()
        client = session.sagemaker_client
        config = client.describe_endpoint_config(
            EndpointConfigName=endpoint["EndpointConfigName"])
        model = client.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        # The SDK's repack (download model.tar.gz and the code, re-tar, upload) ends when it
        # asks for CreateModel: that part is the SDK's work on the archive, not the server's.
        repack_s = (model["CreationTime"] - deploy_start).total_seconds()
        _line("cloud `deploy()`", deploy_s, ready_s, None,
              f"floor {DEPLOY_FLOOR_S:.0f} s (C8) + the SDK's repack {repack_s:.1f} s; "
              f"the rest {deploy_s - DEPLOY_FLOOR_S - repack_s:.1f} s")
        started = time.perf_counter()
        predicted = predictor.predict(BLOG_SENTENCE)
        _line("cloud `predict()`", time.perf_counter() - started, None, None,
              f"-> {predicted}")
        predictor.delete_endpoint()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
