"""Response bodies as values: JSON, CSV and .npy, the formats the default output_fn writes
(S22), so expectations can be written once and hold whatever the Accept."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"


class UndecodableBody(ValueError):
    """The body is not what its Content-Type says."""


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`; None -> ''."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind == JSON or kind.endswith("+json")


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _csv_rows(text: str) -> list[list[float | str]]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    return [[_number(cell.strip()) for cell in row] for row in rows]


def _npy(body: bytes) -> Any:
    import numpy as np

    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UndecodableBody(f"not a .npy array: {exc}") from exc
    if not isinstance(array, np.ndarray):
        array.close()
        raise UndecodableBody("an .npz archive, not a .npy array")
    return array.tolist()


def decode(body: bytes, content_type: str | None) -> Any:
    """The body's value; raises UndecodableBody when it does not parse as its type, or when
    the type is not one of JSON, CSV and .npy."""
    kind = media_type(content_type)
    if is_json(kind):
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UndecodableBody(f"not JSON: {exc}") from exc
    if kind == CSV:
        try:
            rows = _csv_rows(body.decode("utf-8"))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UndecodableBody(f"not CSV: {exc}") from exc
        if not rows or any(isinstance(cell, str) for row in rows for cell in row):
            raise UndecodableBody(f"not a CSV table of numbers: {body[:80]!r}")
        return rows
    if kind == NPY:
        return _npy(body)
    raise UndecodableBody(f"no decoder for Content-Type {content_type!r} (JSON, CSV, .npy)")


def _as_numbers(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_as_numbers(item) for item in value]
    return value


def close_enough(actual: Any, expected: Any, *, rel: float = 1e-4, abs_: float = 1e-5) -> bool:
    """Equal, with numbers compared within a tolerance (formats round floats differently)."""
    actual, expected = _as_numbers(actual), _as_numbers(expected)
    if isinstance(actual, float) and isinstance(expected, float):
        return abs(actual - expected) <= max(abs_, rel * max(abs(actual), abs(expected)))
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            close_enough(a, e, rel=rel, abs_=abs_) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            close_enough(actual[key], expected[key], rel=rel, abs_=abs_) for key in actual
        )
    return bool(actual == expected)


def shape(value: Any) -> list[int] | None:
    """The dimensions of a rectangular nested list (numpy's shape), or None if ragged."""
    if not isinstance(value, list):
        return []
    if not value:
        return [0]
    inner = [shape(item) for item in value]
    first = inner[0]
    if first is None or any(dims != first for dims in inner):
        return None
    return [len(value), *first]


def argmax_rows(value: Any) -> list[int]:
    """The index of the largest number of each row (a 1-D list is one row)."""
    rows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    classes: list[int] = []
    for row in rows:
        if not isinstance(row, list) or not row or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in row
        ):
            raise UndecodableBody(f"not a row of numbers: {row!r}")
        classes.append(max(range(len(row)), key=row.__getitem__))
    return classes
