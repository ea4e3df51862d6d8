"""The training runtime fetches an s3:// sagemaker_submit_directory itself (C5, T9): a
path-style GET signed with SigV4 exactly as botocore signs it, from the endpoint it is given."""

from __future__ import annotations

import datetime
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from container.training.code import prepare_code
from container.training.config import ConfigError
from container.training.s3 import S3Access, S3DownloadError, download, signed_headers

ACCESS = S3Access(endpoint=None, region="us-east-1", access_key="AKIDEXAMPLE",
                  secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session_token=None)


def test_C5_signature_matches_botocore() -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = "http://172.17.0.1:4580/sagemaker-us-east-1-123456789012/job/source/sourcedir.tar.gz"
    request = AWSRequest(method="GET", url=url)
    S3SigV4Auth(Credentials(ACCESS.access_key, ACCESS.secret_key), "s3", "us-east-1").add_auth(
        request)
    when = datetime.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    ours = signed_headers(url, ACCESS, when.replace(tzinfo=datetime.UTC))
    assert ours["Authorization"] == request.headers["Authorization"]


def test_C5_no_credentials_no_signature() -> None:
    unsigned = S3Access(None, "us-east-1", None, None, None)
    assert signed_headers("http://h/b/k", unsigned, datetime.datetime.now(datetime.UTC)) == {}


class _Bucket(http.server.BaseHTTPRequestHandler):
    objects: ClassVar[dict[str, bytes]] = {}
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        body = self.objects.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def s3_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Bucket)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_T9_s3_submit_directory_is_downloaded_and_unpacked(s3_server: str,
                                                            tmp_path: Path) -> None:
    _Bucket.objects = {"/bucket/job/source/sourcedir.tar.gz": _tarball(
        {"train.py": b"print('hi')\n", "lib/util.py": b"X = 1\n"})}
    _Bucket.seen = []
    access = S3Access(s3_server, "us-east-1", ACCESS.access_key, ACCESS.secret_key, None)
    code_dir = tmp_path / "opt_ml" / "code"
    prepare_code("s3://bucket/job/source/sourcedir.tar.gz", code_dir, access)
    assert (code_dir / "train.py").read_text() == "print('hi')\n"
    assert (code_dir / "lib" / "util.py").is_file()
    path, authorization = _Bucket.seen[0]
    assert path == "/bucket/job/source/sourcedir.tar.gz"  # path-style
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


def test_T9_a_missing_object_fails_the_job_with_its_url(s3_server: str, tmp_path: Path) -> None:
    _Bucket.objects = {}
    access = S3Access(s3_server, "us-east-1", None, None, None)
    with pytest.raises(ConfigError, match=r"/bucket/absent.tar.gz: HTTP 404"):
        prepare_code("s3://bucket/absent.tar.gz", tmp_path / "code", access)


def test_T9_no_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(S3DownloadError, match="AWS_ENDPOINT_URL_S3"):
        download("s3://bucket/key", tmp_path / "x", S3Access(None, "us-east-1", None, None,
                                                                None))

