"""What one `smlocal local-mode` command leaves for the next, under the local-mode root: the last
fit's artifacts (so `deploy` needs no path) and the endpoint a detached `deploy` started."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LAST_FIT_FILE = "last-fit.json"
ENDPOINT_FILE = "endpoint.json"


@dataclass(frozen=True)
class LastFit:
    job_name: str
    model_data: str
    output_data: str
    instance_count: int
    wall_s: float


@dataclass(frozen=True)
class EndpointRecord:
    pid: int  # the `deploy` process that holds the endpoint; SIGTERM deletes it
    port: int
    name: str


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` whole: a reader sees the old record or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def save_last_fit(root: Path, fit: LastFit) -> None:
    _write(root / LAST_FIT_FILE, asdict(fit))


def load_last_fit(root: Path) -> LastFit | None:
    data = _read(root / LAST_FIT_FILE)
    return None if data is None else LastFit(**data)


def save_endpoint(path: Path, record: EndpointRecord) -> None:
    _write(path, asdict(record))


def load_endpoint(path: Path) -> EndpointRecord | None:
    data = _read(path)
    return None if data is None else EndpointRecord(**data)
