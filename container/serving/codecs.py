"""The default decoders and encoders of the PyTorch serving toolkit (S20, S22).

Deliberately better than the DLC in one place: `.npy` and `.npz` bodies are loaded with pickles
disabled, because a pickle in a request body runs arbitrary code in the container.

Every way a body can fail to decode raises InputDecodeError (a 500 with the DLC's message by
default, 400 in strict mode), never something that reads as a server fault: JSON nested deeper
than the parser recurses, integers of more digits than Python converts, `.npy` headers that
promise more data than the body holds (numpy would allocate it first) and `.npz` archives that
expand to far more than they weigh (zip bombs).
"""

from __future__ import annotations

import io
import json
import math
import warnings
import zipfile
from typing import IO, Any

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
# An .npz body (at most 6 MiB) may expand to this much; a real sparse matrix compresses a few
# times, a zip bomb a thousand.
MAX_NPZ_EXPANDED_BYTES = 16 * 6 * 1024 * 1024
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
# Array kinds torch.from_numpy takes: bool, integers, floats, complex.
NUMERIC_KINDS = "biufc"


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
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise InputDecodeError(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InputDecodeError("the body is not valid JSON: nested too deeply") from exc
    try:
        return np.array(value)
    except ValueError as exc:  # ragged nesting, more than 64 dimensions
        raise InputDecodeError(f"the JSON body is not a rectangular array: {exc}") from exc
    except RecursionError as exc:
        raise InputDecodeError("the JSON body is not an array: nested too deeply") from exc


def _csv_to_array(data: str | bytes) -> np.ndarray[Any, Any]:
    text = _text(data)
    try:
        with warnings.catch_warnings():
            # An empty body is an empty table, as on the DLC; the warning would only fill logs.
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InputDecodeError(f"the CSV body is not a table of numbers: {exc}") from exc


def _bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _check_npy_header(
    stream: IO[bytes], available: int, what: str, *, numeric: bool = True
) -> None:
    """Read an .npy header from `stream` and refuse what np.load must not be given: pickled
    objects, non-numeric dtypes (when `numeric`), and more data than the `available` bytes hold
    (np.load would allocate the promised array before finding out)."""
    start = stream.tell()
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise InputDecodeError(f"{what} is .npy format {version}; send version 1.0 or 2.0")
    except InputDecodeError:
        raise
    except Exception as exc:
        # numpy parses the header (at most 10,000 bytes) with ast and tokenize: any error of
        # theirs (ValueError, SyntaxError, tokenize.TokenError...) means a malformed header.
        raise InputDecodeError(f"{what} is not a .npy file: {exc}") from exc
    if dtype.hasobject:
        raise InputDecodeError(
            f"{what} holds pickled Python objects ({dtype}); they are not loaded, because "
            "unpickling runs code (np.load(allow_pickle=False))"
        )
    if numeric and dtype.kind not in NUMERIC_KINDS:
        raise InputDecodeError(f"{what} has dtype {dtype}; send numbers")
    promised = math.prod(shape) * dtype.itemsize
    held = available - (stream.tell() - start)
    if promised > held:
        raise InputDecodeError(
            f"{what} is truncated: its header promises {promised} bytes of data (shape "
            f"{shape}, {dtype}), it holds {held}"
        )


def _npy_to_array(data: str | bytes) -> np.ndarray[Any, Any]:
    raw = _bytes(data)
    if raw.startswith(ZIP_MAGIC):
        raise InputDecodeError("the body is an .npz archive, not a .npy array")
    _check_npy_header(io.BytesIO(raw), len(raw), "the body")
    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputDecodeError(f"the body is not a .npy array: {exc}") from exc
    if not isinstance(loaded, np.ndarray):  # pragma: no cover - excluded by the magic check
        loaded.close()
        raise InputDecodeError("the body is an .npz archive, not a .npy array")
    return loaded


def _check_npz_archive(raw: bytes) -> None:
    """Refuse zip bombs and members that np.load must not be given, before scipy reads any."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
            expanded = sum(member.file_size for member in members)
            if expanded > MAX_NPZ_EXPANDED_BYTES:
                raise InputDecodeError(
                    f"the .npz body expands to {expanded} bytes; at most "
                    f"{MAX_NPZ_EXPANDED_BYTES} are accepted (is it a zip bomb?)"
                )
            for member in members:
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as stream:
                    # ZipExtFile has no tell(); the header is small: read it through a buffer.
                    head = io.BytesIO(stream.read(64 * 1024))
                # scipy keeps the format name as a bytes array: only pickles are refused here.
                _check_npy_header(
                    head, member.file_size, f"the .npz member {member.filename}", numeric=False
                )
    except InputDecodeError:
        raise
    # BadZipFile, LargeZipFile, NotImplementedError (compression), RuntimeError (encrypted).
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            OSError, EOFError, ValueError) as exc:
        raise InputDecodeError(f"the body is not a valid .npz archive: {exc}") from exc


def _npz_to_sparse(data: str | bytes) -> Any:
    import scipy.sparse  # only npz needs scipy; keep it out of the start-up path

    raw = _bytes(data)
    _check_npz_archive(raw)
    try:
        # load_npz reads with allow_pickle=False.
        return scipy.sparse.load_npz(io.BytesIO(raw))
    except (ValueError, OSError, EOFError, KeyError, TypeError, IndexError,
            zipfile.BadZipFile) as exc:
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
