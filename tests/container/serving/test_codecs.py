"""The default decoders and encoders (S20, S22)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse

from container.serving import codecs
from container.serving.errors import (
    InputDecodeError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_s20_json_decodes_to_an_array():
    array = codecs.decode("[[1, 2], [3, 4.5]]", codecs.JSON)
    np.testing.assert_array_equal(array, [[1, 2], [3, 4.5]])


def test_s20_csv_decodes_to_a_2d_array_even_for_one_row():
    np.testing.assert_array_equal(codecs.decode("1,2,3", codecs.CSV), [[1, 2, 3]])
    np.testing.assert_array_equal(codecs.decode("1,2\n3,4\n", codecs.CSV), [[1, 2], [3, 4]])


def test_s20_npy_decodes_with_its_dtype():
    original = np.arange(6, dtype=np.int16).reshape(2, 3)
    decoded = codecs.decode(npy_bytes(original), codecs.NPY)
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, original)


def test_s20_npy_with_pickled_objects_is_refused():
    # The DLC loads these with allow_pickle=True: a request body could run code in the container.
    pickled = npy_bytes(np.array([{"payload": "object"}], dtype=object), allow_pickle=True)
    with pytest.raises(InputDecodeError, match="pickled"):
        codecs.decode(pickled, codecs.NPY)


def test_s20_npz_decodes_to_a_sparse_matrix():
    matrix = scipy.sparse.csr_matrix([[0, 1.5], [2, 0]])
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, matrix)
    decoded = codecs.decode(buffer.getvalue(), codecs.NPZ)
    assert scipy.sparse.issparse(decoded)
    np.testing.assert_array_equal(decoded.toarray(), matrix.toarray())


def test_s20_other_content_types_are_unsupported():
    with pytest.raises(UnsupportedContentTypeError, match="text/plain"):
        codecs.decode(b"hello", "text/plain")
    with pytest.raises(UnsupportedContentTypeError, match="None"):
        codecs.decode(b"hello", None)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("[1, 2", codecs.JSON), ("[[1, 2], [3]]", codecs.JSON), ("1,x", codecs.CSV),
     (b"not npy", codecs.NPY), (b"not npz", codecs.NPZ)],
)
def test_s20_malformed_bodies_are_decode_errors(body, content_type):
    with pytest.raises(InputDecodeError):
        codecs.decode(body, content_type)


def test_s22_accept_is_split_on_commas_and_the_first_supported_type_wins():
    assert codecs.parse_accept("text/html, text/csv ,application/json") == [
        "text/html", "text/csv", "application/json"
    ]
    assert codecs.encode_for_accept([[1, 2]], "text/html, text/csv, application/json") == (
        b"1,2\n"
    )


def test_s22_json_csv_and_npy_encoders():
    value = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert json.loads(codecs.encode_for_accept(value, codecs.JSON)) == [[1.0, 2.0], [3.0, 4.0]]
    csv = codecs.encode_for_accept(value, codecs.CSV)
    assert csv == b"1.0,2.0\n3.0,4.0\n"
    npy = codecs.encode_for_accept(value, codecs.NPY)
    np.testing.assert_array_equal(np.load(io.BytesIO(npy)), value)


def test_s22_npz_is_decode_only_and_unknown_accepts_are_unsupported():
    with pytest.raises(UnsupportedAcceptError):
        codecs.encode_for_accept([1], codecs.NPZ)
    with pytest.raises(UnsupportedAcceptError, match="text/html"):
        codecs.encode_for_accept([1], "text/html")
