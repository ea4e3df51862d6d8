"""Hyperparameters as the user script's command line (T8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _flag(name: str) -> str:
    return f"-{name}" if len(name) == 1 else f"--{name}"


def _value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{key}={item}" for key, item in sorted(value.items()))
    return str(value)


def to_cli_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """Keys sorted, `--key value` (`-k value` for one-letter keys), `str()` of scalars, dicts as
    `k=v,k2=v2` -- exactly what the sagemaker-training toolkit passes, so a script's argparse sees
    the same strings locally and in the cloud."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        args += [_flag(key), _value(hyperparameters[key])]
    return args
