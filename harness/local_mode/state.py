"""What one `smlocal local-mode` command leaves for the next, under the local-mode root: the last
fit's artifacts (so `deploy` needs no path) and the endpoint a detached `deploy` started."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

LAST_FIT_FILE = "last-fit.json"
ENDPOINT_FILE = "endpoint.json"


@dataclass(frozen=True)
class LastFit:
    job_name: str
    model_data: str
    output_data: str


@dataclass(frozen=True)
class EndpointRecord:
    pid: int  # the `deploy` process that holds the endpoint; SIGTERM deletes it
    port: int
    name: str


Record = TypeVar("Record", "LastFit", "EndpointRecord")


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` whole: a reader sees the old record or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def _read(path: Path, record: type[Record]) -> Record | None:
    """The record in `path`; None when it is missing, torn, or not this record (another
    version's file is ignored, as if absent)."""
    try:
        data = json.loads(path.read_text())
        return record(**{f.name: data[f.name] for f in fields(record)})
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return None


def save_last_fit(root: Path, fit: LastFit) -> None:
    _write(root / LAST_FIT_FILE, asdict(fit))


def load_last_fit(root: Path) -> LastFit | None:
    return _read(root / LAST_FIT_FILE, LastFit)


def save_endpoint(path: Path, record: EndpointRecord) -> None:
    _write(path, asdict(record))


def load_endpoint(path: Path) -> EndpointRecord | None:
    return _read(path, EndpointRecord)
