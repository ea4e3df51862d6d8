"""The default decoders and encoders of the PyTorch serving toolkit (S20, S22).

Deliberately better than the DLC in one place: `.npy` and `.npz` bodies are loaded with pickles
disabled, because a pickle in a request body runs arbitrary code in the container.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from container.serving.errors import (
    InputDecodeError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"
# S10: only these reach input_fn as str; the match is exact (no parameters such as charset).
UTF8_TYPES = (JSON, CSV)
DECODABLE_TYPES = (JSON, CSV, NPY, NPZ)
# S22: npz is decode-only.
ENCODABLE_TYPES = (JSON, CSV, NPY)


def _text(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputDecodeError(f"the body is not valid UTF-8: {exc}") from exc


def _json_to_array(data: str | bytes) -> np.ndarray[Any, Any]:
    try:
        value = json.loads(_text(data))
    except json.JSONDecodeError as exc:
        raise InputDecodeError(f"the body is not valid JSON: {exc}") from exc
    try:
        return np.array(value)
    except ValueError as exc:  # ragged nesting
        raise InputDecodeError(f"the JSON body is not a rectangular array: {exc}") from exc


def _csv_to_array(data: str | bytes) -> np.ndarray[Any, Any]:
    try:
        return np.loadtxt(io.StringIO(_text(data)), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InputDecodeError(f"the CSV body is not a table of numbers: {exc}") from exc


def _npy_to_array(data: str | bytes) -> np.ndarray[Any, Any]:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as exc:
        # numpy says "Object arrays cannot be loaded when allow_pickle=False" for pickles.
        raise InputDecodeError(
            f"the body is not a .npy array without pickled objects: {exc}"
        ) from exc
    except (OSError, EOFError) as exc:
        raise InputDecodeError(f"the body is not a .npy file: {exc}") from exc
    if not isinstance(loaded, np.ndarray):
        loaded.close()
        raise InputDecodeError("the body is an .npz archive, not a .npy array")
    return loaded


def _npz_to_sparse(data: str | bytes) -> Any:
    import scipy.sparse  # only npz needs scipy; keep it out of the start-up path

    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        # load_npz reads with allow_pickle=False.
        return scipy.sparse.load_npz(io.BytesIO(raw))
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise InputDecodeError(f"the body is not a scipy sparse .npz matrix: {exc}") from exc


def decode(data: str | bytes, content_type: str | None) -> Any:
    """S20: the body as a numpy array (a scipy sparse matrix for npz)."""
    if content_type == JSON:
        return _json_to_array(data)
    if content_type == CSV:
        return _csv_to_array(data)
    if content_type == NPY:
        return _npy_to_array(data)
    if content_type == NPZ:
        return _npz_to_sparse(data)
    raise UnsupportedContentTypeError(content_type, DECODABLE_TYPES)


def parse_accept(accept: str) -> list[str]:
    """S22: split on commas, spaces removed; no q-values or wildcards, as the toolkit."""
    return [part for part in accept.replace(" ", "").split(",") if part]


def _as_list(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(value: Any, content_type: str) -> str | bytes:
    """S22: `value` (array-like) in `content_type`, one of ENCODABLE_TYPES."""
    if content_type == JSON:
        return json.dumps(value, default=_as_list)
    if content_type == CSV:
        buffer = io.StringIO()
        np.savetxt(buffer, np.asarray(value), delimiter=",", fmt="%s")
        return buffer.getvalue()
    if content_type == NPY:
        binary = io.BytesIO()
        np.save(binary, np.asarray(value), allow_pickle=False)
        return binary.getvalue()
    raise UnsupportedAcceptError(content_type, ENCODABLE_TYPES)


def encode_for_accept(value: Any, accept: str) -> str | bytes:
    """S22: encode in the first supported type of `accept`; CSV comes back as UTF-8 bytes."""
    for content_type in parse_accept(accept):
        if content_type in ENCODABLE_TYPES:
            encoded = encode(value, content_type)
            if content_type == CSV and isinstance(encoded, str):
                return encoded.encode("utf-8")
            return encoded
    raise UnsupportedAcceptError(accept, ENCODABLE_TYPES)
