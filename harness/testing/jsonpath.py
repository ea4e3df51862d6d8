"""A small JSONPath subset for expectations: `$`, `.name`, `['name']`, `[index]` (negative from
the end), e.g. `$[0][1]` or `$.predictions[0].label`."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w-]*)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[(?P<quoted>'[^']*'|"[^"]*")\]"""
)


class JsonPathError(ValueError):
    """The path is malformed, or does not lead anywhere in the value."""


def parse(path: str) -> list[str | int]:
    if not path.startswith("$"):
        raise JsonPathError(f"JSON path {path!r} must start with $")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise JsonPathError(f"JSON path {path!r}: cannot read {path[position:]!r}")
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(match.group("quoted")[1:-1])
        position = match.end()
    return steps


def resolve(value: Any, path: str) -> Any:
    """The value at `path`; raises JsonPathError naming the step that has nothing."""
    current = value
    walked = "$"
    for step in parse(path):
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                raise JsonPathError(f"{walked} has no item [{step}]")
            current = current[step]
            walked += f"[{step}]"
        else:
            if not isinstance(current, dict) or step not in current:
                raise JsonPathError(f"{walked} has no key {step!r}")
            current = current[step]
            walked += f".{step}"
    return current
