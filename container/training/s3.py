"""Downloading `sagemaker_submit_directory` from S3, as the AWS image does (C5, T9), with the
standard library only (the image has no boto3).

The object is fetched with a path-style GET (`<endpoint>/<bucket>/<key>`) from the S3 endpoint
the container is given (`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`: what `smlocal cloud`
sets to the address where containers reach it), signed with Signature Version 4 when the
container has credentials (S3 servers, moto's included, refuse anonymous reads of private
objects).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 60.0
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3DownloadError(Exception):
    """The object could not be fetched."""


@dataclass(frozen=True)
class S3Access:
    """Where S3 is and who asks, read once from the container's environment."""

    endpoint: str | None
    region: str
    access_key: str | None
    secret_key: str | None
    session_token: str | None

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> S3Access:
        return cls(
            endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
        )


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise S3DownloadError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise S3DownloadError(f"{uri} names no object (s3://bucket/key)")
    return bucket, key


def object_url(endpoint: str, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    return f"{endpoint.rstrip('/')}/{urllib.parse.quote(bucket)}/{urllib.parse.quote(key)}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(url: str, access: S3Access, when: datetime.datetime) -> dict[str, str]:
    """The headers of a SigV4-signed GET of `url` (no query, empty payload)."""
    if not (access.access_key and access.secret_key):
        return {}
    parts = urllib.parse.urlsplit(url)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers = {"host": parts.netloc, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": stamp}
    if access.session_token:
        headers["x-amz-security-token"] = access.session_token
    names = sorted(headers)
    canonical = "\n".join([
        "GET", parts.path or "/", "",
        "".join(f"{name}:{headers[name]}\n" for name in names),
        ";".join(names), EMPTY_SHA256,
    ])
    scope = f"{day}/{access.region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{access.secret_key}".encode(), day), access.region),
                      "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}")
    del headers["host"]  # urllib sends the same value itself
    return headers


def download(uri: str, target: Path, access: S3Access) -> Path:
    """Fetch `uri` into the file `target`."""
    if not access.endpoint:
        raise S3DownloadError(
            f"cannot download {uri}: no S3 endpoint (set AWS_ENDPOINT_URL_S3 or "
            "AWS_ENDPOINT_URL for the container)")
    url = object_url(access.endpoint, uri)
    request = urllib.request.Request(
        url, headers=signed_headers(url, access, datetime.datetime.now(datetime.UTC)))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, \
                target.open("wb") as out:
            shutil.copyfileobj(response, out)
    except urllib.error.HTTPError as exc:
        raise S3DownloadError(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise S3DownloadError(f"GET {url}: {exc}") from exc
    return target
