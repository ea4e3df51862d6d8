"""boto3 clients of the server itself: the job runner, the log shipper and persistence use
the public AWS API (S3, CloudWatch Logs, IAM) over loopback, never moto's internals."""

from __future__ import annotations

import functools
import threading
from typing import Any

DUMMY_ACCESS_KEY = "AKIASMLOCALCLOUD0000"
DUMMY_SECRET_KEY = "smlocal-cloud-not-a-secret"
# The server's own calls sign with this key, so the router can tell them from a user's: the
# IAM additions act on users' requests only (their own lookups must not recurse).
INTERNAL_ACCESS_KEY = "AKIASMLOCALINTERNAL0"


class Clients:
    """One boto3 session per thread (boto3 sessions are not thread-safe), clients cached."""

    def __init__(self, url: str, region: str) -> None:
        self.url = url
        self.region = region
        self._local = threading.local()

    def _client(self, service: str) -> Any:
        cache: dict[str, Any] | None = getattr(self._local, "clients", None)
        if cache is None:
            cache = self._local.clients = {}
        if service not in cache:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(
                aws_access_key_id=INTERNAL_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY,
                region_name=self.region)
            cache[service] = session.client(
                service, endpoint_url=self.url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"},
                              s3={"addressing_style": "path"}))
        return cache[service]

    def s3(self) -> Any:
        return self._client("s3")

    def logs(self) -> Any:
        return self._client("logs")

    def iam(self) -> Any:
        return self._client("iam")

    def sagemaker(self) -> Any:
        return self._client("sagemaker")


@functools.cache
def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/prefix` -> (bucket, key/prefix)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key
