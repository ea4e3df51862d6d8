"""S3 across restarts: moto keeps objects in memory, so every bucket that changes is mirrored
to disk shortly after (and once more at shutdown), and `up` puts everything back before it
answers. A trained model is never lost because the emulator stopped.

On disk, under `<state>/s3/`: `manifest.json` maps bucket -> key -> {etag, size, content type,
metadata, blob}, and `blobs/<etag>` holds each object's bytes once (an object's ETag names its
content, so unchanged objects are never copied again). Any file name is safe that way, whatever
the key (`a/../b`, `dir/`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from harness.cloud.clients import Clients

log = logging.getLogger("smlocal.cloud")

SYNC_DELAY_S = 1.0  # a burst of writes (a multipart upload) is mirrored once
_SAFE = re.compile(r"[^A-Za-z0-9_-]")

Manifest = dict[str, dict[str, dict[str, Any]]]


def blob_name(etag: str) -> str:
    return _SAFE.sub("_", etag.strip('"'))


class S3Persistence:
    def __init__(self, root: Path, clients: Clients) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.manifest_file = root / "manifest.json"
        self.clients = clients
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.manifest: Manifest = self._load()

    # --- the manifest ---------------------------------------------------------------------

    def _load(self) -> Manifest:
        if not self.manifest_file.is_file():
            return {}
        try:
            manifest: Manifest = json.loads(self.manifest_file.read_text())
        except json.JSONDecodeError:
            log.error("%s is corrupt; starting with empty S3", self.manifest_file)
            return {}
        return manifest

    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.manifest_file.with_suffix(".tmp")
        partial.write_text(json.dumps(self.manifest, indent=1, sort_keys=True))
        os.replace(partial, self.manifest_file)  # never a half-written manifest

    # --- restore --------------------------------------------------------------------------

    def restore(self) -> int:
        """Put every saved bucket and object back into the (empty) server; the object count."""
        s3 = self.clients.s3()
        count = 0
        for bucket, objects in self.manifest.items():
            s3.create_bucket(Bucket=bucket)
            for key, entry in objects.items():
                blob = self.blobs / entry["blob"]
                if not blob.is_file():
                    log.error("s3://%s/%s: blob %s is missing; skipped", bucket, key, blob)
                    continue
                with blob.open("rb") as body:
                    s3.put_object(Bucket=bucket, Key=key, Body=body,
                                  ContentType=entry.get("content_type")
                                  or "binary/octet-stream",
                                  Metadata=entry.get("metadata") or {})
                count += 1
        return count

    # --- mirroring ------------------------------------------------------------------------

    def changed(self, bucket: str) -> None:
        with self._lock:
            self._dirty.add(bucket)
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="s3-persistence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Mirror what is still pending, then every bucket once more (shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.sync_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            time.sleep(SYNC_DELAY_S)
            self._wake.clear()
            with self._lock:
                dirty, self._dirty = self._dirty, set()
            for bucket in sorted(dirty):
                try:
                    self.sync_bucket(bucket)
                except Exception:
                    log.exception("mirroring s3://%s to disk failed", bucket)

    def sync_all(self) -> None:
        s3 = self.clients.s3()
        buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in sorted(buckets | set(self.manifest)):
            self.sync_bucket(bucket)

    def sync_bucket(self, bucket: str) -> None:
        """Make the bucket's manifest entry and blobs match the server's bucket."""
        s3 = self.clients.s3()
        with self._sync_lock:
            try:
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                listed = {item["Key"]: item for page in pages for item in page.get("Contents", [])}
            except s3.exceptions.NoSuchBucket:
                self.manifest.pop(bucket, None)
                self._save()
                return
            saved = self.manifest.get(bucket, {})
            current: dict[str, dict[str, Any]] = {}
            for key, item in listed.items():
                etag = str(item["ETag"])
                entry = saved.get(key)
                if entry is not None and entry["etag"] == etag and \
                        (self.blobs / entry["blob"]).is_file():
                    current[key] = entry
                    continue
                current[key] = self._save_object(bucket, key, etag)
            self.manifest[bucket] = current
            self._save()
            self._collect_garbage()

    def _save_object(self, bucket: str, key: str, etag: str) -> dict[str, Any]:
        response = self.clients.s3().get_object(Bucket=bucket, Key=key)
        name = blob_name(etag)
        self.blobs.mkdir(parents=True, exist_ok=True)
        blob = self.blobs / name
        if not blob.is_file():
            partial = blob.with_suffix(".partial")
            with partial.open("wb") as out:
                for chunk in response["Body"].iter_chunks(1 << 20):
                    out.write(chunk)
            os.replace(partial, blob)
        else:
            response["Body"].close()
        return {"etag": etag, "blob": name, "size": response.get("ContentLength"),
                "content_type": response.get("ContentType"),
                "metadata": response.get("Metadata") or {}}

    def _collect_garbage(self) -> None:
        used = {entry["blob"] for objects in self.manifest.values() for entry in objects.values()}
        if not self.blobs.is_dir():
            return
        for blob in self.blobs.iterdir():
            if blob.name not in used and blob.suffix != ".partial":
                blob.unlink(missing_ok=True)
