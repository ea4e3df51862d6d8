"""Property-based fuzzing of the default decoders and encoders (S20, S22), issue 14 item 3.

Whatever bytes arrive with whatever Content-Type, `decode` either returns or raises a
RequestContractError (the request's fault: 500 with the DLC's message, 400/415 in strict mode),
never anything that would read as a server fault, and never slowly. What `encode` writes,
`decode` reads back.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from container.serving import codecs
from container.serving.errors import RequestContractError

# Bounded so the module stays within a few seconds in CI; SMLOCAL_FUZZ_EXAMPLES=5000 for a
# deeper run by hand.
EXAMPLES = int(os.environ.get("SMLOCAL_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Generous: one decode of a small fuzzed body takes microseconds; a hang or a quadratic path
# would take seconds.
MAX_DECODE_S = 2.0

CONTENT_TYPES = st.sampled_from(
    [*codecs.DECODABLE_TYPES, None, "", "application/json; charset=utf-8", "text/plain",
     "application/octet-stream"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=40,
)
NUMERIC_DTYPES = st.one_of(
    hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(), hnp.complex_number_dtypes(),
)
ANY_DTYPES = st.one_of(NUMERIC_DTYPES, hnp.unicode_string_dtypes(), hnp.byte_string_dtypes(),
                       hnp.datetime64_dtypes())


def _decode_is_clean(data: str | bytes, content_type: str | None) -> Any:
    started = time.monotonic()
    try:
        return codecs.decode(data, content_type)
    except RequestContractError:
        return None
    finally:
        assert time.monotonic() - started < MAX_DECODE_S


def _npy_bytes(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@FUZZ
@given(st.binary(max_size=2048), CONTENT_TYPES)
@example(b"[" * 100_000, codecs.JSON)
@example(b"[" + b"9" * 5000 + b"]", codecs.JSON)
@example(b"\x93NUMPY\x01\x00\xff\xff", codecs.NPY)
@example(b"PK\x05\x06" + bytes(18), codecs.NPZ)
def test_S20_any_bytes_decode_or_raise_a_request_error(data: bytes, content_type: str | None):
    _decode_is_clean(data, content_type)


@FUZZ
@given(st.text(max_size=2048), st.sampled_from([codecs.JSON, codecs.CSV]))
def test_S10_S20_any_text_decodes_or_raises_a_request_error(text: str, content_type: str):
    _decode_is_clean(text, content_type)


@FUZZ
@given(JSON_VALUES)
def test_S20_any_json_document_decodes_or_raises_a_request_error(value: Any):
    _decode_is_clean(json.dumps(value), codecs.JSON)


@FUZZ
@given(hnp.arrays(ANY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
       st.data())
def test_S20_npy_files_cut_or_flipped_anywhere_decode_or_raise_a_request_error(
    array: np.ndarray[Any, Any], data: st.DataObject
):
    raw = bytearray(_npy_bytes(array))
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    _decode_is_clean(bytes(raw[:cut]), codecs.NPY)
    position = data.draw(st.integers(0, len(raw) - 1), label="flip")
    raw[position] ^= data.draw(st.integers(1, 255), label="mask")
    _decode_is_clean(bytes(raw), codecs.NPY)


@FUZZ
@given(st.binary(min_size=1, max_size=512), st.data())
def test_S20_npz_archives_with_fuzzed_members_decode_or_raise_a_request_error(
    payload: bytes, data: st.DataObject
):
    import scipy.sparse

    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix(np.eye(2)))
    members = dict.fromkeys(["data.npy", "indices.npy", "indptr.npy", "format.npy", "shape.npy"])
    victim = data.draw(st.sampled_from(sorted(members)), label="member")
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(buffer) as original, zipfile.ZipFile(rebuilt, "w") as archive:
        for name in original.namelist():
            archive.writestr(name, payload if name == victim else original.read(name))
    _decode_is_clean(rebuilt.getvalue(), codecs.NPZ)


FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
TABLES = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                    elements=FINITE_FLOATS)


@FUZZ
@given(TABLES)
def test_S20_S22_json_csv_and_npy_round_trip(table: np.ndarray[Any, Any]):
    as_json = codecs.encode(table, codecs.JSON)
    np.testing.assert_array_equal(codecs.decode(as_json, codecs.JSON), table)
    as_csv = codecs.encode_for_accept(table, codecs.CSV)
    assert isinstance(as_csv, bytes)
    np.testing.assert_array_equal(codecs.decode(as_csv.decode(), codecs.CSV), table)
    as_npy = codecs.encode(table, codecs.NPY)
    np.testing.assert_array_equal(codecs.decode(as_npy, codecs.NPY), table)


@FUZZ
@given(st.text(max_size=200))
def test_S22_any_accept_encodes_or_raises_a_request_error(accept: str):
    try:
        encoded = codecs.encode_for_accept(np.eye(2), accept)
    except RequestContractError:
        return
    assert isinstance(encoded, str | bytes)


@pytest.mark.parametrize("content_type", [codecs.NPY, codecs.NPZ])
def test_S20_pickled_objects_are_refused_not_loaded(content_type: str):
    array = np.empty(1, dtype=object)
    array[0] = {"a": 1}
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    raw = buffer.getvalue()
    if content_type == codecs.NPZ:
        archive_buffer = io.BytesIO()
        with zipfile.ZipFile(archive_buffer, "w") as archive:
            archive.writestr("data.npy", raw)
        raw = archive_buffer.getvalue()
    with pytest.raises(RequestContractError, match="pickled Python objects"):
        codecs.decode(raw, content_type)
