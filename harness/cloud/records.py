"""The control plane's records (training jobs, models, endpoint configs, endpoints) as their
Describe calls return them, kept in memory and written to `<state>/records.json` on every change
so `status`, List and Describe survive a restart."""

from __future__ import annotations

import datetime
import json
import os
import threading
from pathlib import Path
from typing import Any

Record = dict[str, Any]
KINDS = ("training_jobs", "models", "endpoint_configs", "endpoints")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$time"}:
            return datetime.datetime.fromisoformat(value["$time"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class RecordStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.kinds: dict[str, dict[str, Record]] = {kind: {} for kind in KINDS}
        if path.is_file():
            loaded = _decode(json.loads(path.read_text()))
            for kind in KINDS:
                self.kinds[kind] = dict(loaded.get(kind, {}))

    def table(self, kind: str) -> dict[str, Record]:
        return self.kinds[kind]

    def save(self) -> None:
        with self.lock:
            text = json.dumps(_encode(self.kinds), indent=1, sort_keys=True)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".tmp")
            partial.write_text(text)
            os.replace(partial, self.path)
