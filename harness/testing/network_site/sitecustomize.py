"""The network guard in every Python process of a command: put this directory on PYTHONPATH
and SMLOCAL_NETWORK_LOG in the environment, and each Python process started with them (the
`smlocal` CLI, the training runtime, the training script, docker-compose v1, inline scripts)
refuses any connection or name lookup beyond loopback, the Docker socket and Docker's networks,
and appends every attempt, allowed or refused, to that file as one JSON line. A first line per
process says which process it is, so the log proves which processes were guarded.

The audit hook of `harness.testing.network_guard` works in-process only; this is how it reaches
the processes a shell script starts. The guard's module is loaded by path (not through the
`harness` package), so the file works in any Python 3.8+ (the system python3 of
docker-compose included), with the standard library alone.

This directory must hold nothing else: every module in it shadows one of the same name.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from pathlib import Path


def _command_line() -> list[str]:
    """This process's full command line (sys.argv is not complete yet while site runs)."""
    try:
        raw = Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return [sys.executable, *sys.argv]
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _install(log_path: str) -> None:
    source = Path(__file__).resolve().parent.parent / "network_guard.py"
    spec = importlib.util.spec_from_file_location("_smlocal_network_guard", source)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    lock = threading.Lock()

    def write(record: dict[str, object]) -> None:
        line = json.dumps({"pid": os.getpid(), **record}) + "\n"
        with lock, open(log_path, "a", encoding="utf-8") as log:
            log.write(line)

    guard = module.NetworkGuard()
    audit = guard._audit

    def audit_and_log(event: str, args: tuple[object, ...]) -> None:
        seen = len(guard.attempts)
        try:
            audit(event, args)
        finally:
            for attempt in guard.attempts[seen:]:
                write({"event": attempt.event, "target": attempt.target,
                       "allowed": attempt.allowed})

    guard._audit = audit_and_log
    write({"event": "process", "ppid": os.getppid(), "argv": _command_line()})
    guard.__enter__()


if os.environ.get("SMLOCAL_NETWORK_LOG"):
    _install(os.environ["SMLOCAL_NETWORK_LOG"])
