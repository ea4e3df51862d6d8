"""The hostile-request corpus (issue 14 item 2), as data: what each client sends, byte for byte,
and what each served handler set must answer.

Handler sets (see test_hostile_requests.py): "default" is the PyTorch default handlers in the
DLC's mode (a handler error is 500 with `message\\ntraceback`, S23), "strict" the same with
SMLOCAL_STRICT=1 (400/415/406 with a JSON body), "inference" the project's handlers/inference.py
(its RequestError carries 400/415, S24). An expectation keyed "*" holds for every set; a case
without an entry for a set is not sent to it.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from hostile_server import GOOD_DEFAULT_BODY, GOOD_SENTENCES
from raw_http import Pause, Step, chunked, request_bytes

# A step that is costly to make (megabytes, a zip bomb) is made when its case runs.
LazyStep = Step | Callable[[], bytes]

MIB = 1024 * 1024
LIMIT = 6 * MIB  # S4
# Who would create this file if a pickle in a request body were ever loaded.
PICKLE_MARKER = Path(tempfile.gettempdir()) / "smlocal-hostile-pickle-ran"
# The body timeout the corpus servers run with (SMLOCAL_BODY_TIMEOUT), so slow clients are
# answered within the test's patience.
BODY_TIMEOUT_S = 2.0
INVALID_HTTP = "Invalid HTTP request"


@dataclass(frozen=True)
class Expect:
    # None: no response at all, the connection just ends.
    status: int | None
    # In the response body, case-insensitively.
    says: str = ""
    # True: the server closes the connection after answering; False: it keeps it open.
    closes: bool | None = None
    # Also right: h11 refuses a head over 16 KiB with 400 when it arrives in pieces, and the
    # app refuses it with 414/431 when it arrives whole; the kernel decides which.
    or_status: int | None = None


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    steps: tuple[LazyStep, ...]
    expect: Mapping[str, Expect]
    # Pipelined cases read several responses; `also` holds the expectations for the later ones.
    also: Mapping[str, tuple[Expect, ...]] = field(default_factory=dict)
    methods: tuple[str, ...] = ("POST",)
    hang_up: str | None = None
    timeout_s: float = 10.0
    # False where the server rightly answers before the client is done (100 Continue).
    stop_when_answered: bool = True
    notes: str = ""

    def expectation(self, handler_set: str) -> Expect | None:
        return self.expect.get(handler_set, self.expect.get("*"))

    def later(self, handler_set: str) -> tuple[Expect, ...]:
        return self.also.get(handler_set, self.also.get("*", ()))

    def made_steps(self) -> tuple[Step, ...]:
        return tuple(step() if callable(step) else step for step in self.steps)


def post(
    body: bytes,
    content_type: str | None = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
    path: str = "/invocations",
    **kwargs: object,
) -> bytes:
    all_headers = ((("Content-Type", content_type),) if content_type is not None else ()) + headers
    return request_bytes("POST", path, all_headers, body, **kwargs)  # type: ignore[arg-type]


def get(path: str, headers: tuple[tuple[str, str], ...] = (), **kwargs: object) -> bytes:
    return request_bytes("GET", path, headers, **kwargs)  # type: ignore[arg-type]


def bad_input(says: str, inference: Expect | None = None, strict: int = 400) -> dict[str, Expect]:
    """A body the default input_fn refuses: 500 in the DLC's mode (S23), 400/415 in strict."""
    result = {"default": Expect(500, says), "strict": Expect(strict, says)}
    if inference is not None:
        result["inference"] = inference
    return result


NOT_JSON = Expect(400, "not valid JSON")
NOT_SENTENCES = Expect(400, "send a JSON string")
NOT_UTF8 = Expect(400, "not UTF-8")
UNSUPPORTED_TYPE = Expect(415, "unsupported content type")
SERVED = Expect(200)
HTTP_400 = {"*": Expect(400, INVALID_HTTP, closes=True)}


# --- bodies that take code to make -----------------------------------------------------------


class _WouldRunCode:
    """Pickled into an object array: unpickling it creates PICKLE_MARKER."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
        return (open, (str(PICKLE_MARKER), "w"))


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_pickle() -> bytes:
    array = np.empty(1, dtype=object)
    array[0] = _WouldRunCode()
    return _npy(array, allow_pickle=True)


def npy_header(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    text = header.encode("latin-1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    if version == (1, 0):
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text + data


def npz_pickle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("format.npy", _npy(np.array(b"csr")))
        archive.writestr("data.npy", npy_pickle())
    return buffer.getvalue()


@cache
def npz_zip_bomb(expanded: int = 512 * MIB) -> bytes:
    """A complete scipy CSR .npz (format, shape, indices, indptr, data) whose data member is
    `expanded` bytes of zeros, deflated about a thousand times: scipy.sparse.load_npz would
    inflate all of it."""
    count = expanded // 8
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("format.npy", _npy(np.array(b"csr")))
        archive.writestr("shape.npy", _npy(np.array([1, count])))
        archive.writestr("indices.npy", _npy(np.arange(0, dtype=np.int32)))
        archive.writestr("indptr.npy", _npy(np.array([0, 0], dtype=np.int32)))
        with archive.open("data.npy", "w", force_zip64=True) as member:
            member.write(npy_header(
                f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({count},), }}"
            ))
            zeros = bytes(MIB)
            for _ in range(expanded // MIB):
                member.write(zeros)
    return buffer.getvalue()


def npz_lying_size() -> bytes:
    """A member that says it expands to 1,000 bytes and expands to 32 MiB."""
    payload = npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4194304,), }")
    payload += bytes(32 * MIB)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.npy", payload)
    raw = bytearray(buffer.getvalue())
    local = raw.index(b"PK\x03\x04")
    struct.pack_into("<I", raw, local + 22, 1000)
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 1000)
    return bytes(raw)


def npz_many_members(count: int = 5000) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            archive.writestr(f"m{index}.npy", _npy(np.zeros(1)))
    return buffer.getvalue()


def npz_sparse() -> bytes:
    import scipy.sparse

    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix(np.eye(3, dtype=np.float32)))
    return buffer.getvalue()


def json_nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def padded_to(body: bytes, size: int) -> bytes:
    return body + b" " * (size - len(body))


# --- the corpus -------------------------------------------------------------------------------

GOOD_ANY = {"default": SERVED, "strict": SERVED}


def _cases() -> list[Case]:
    cases: list[Case] = []

    def add(id: str, category: str, steps: LazyStep | tuple[LazyStep, ...],
            expect: Mapping[str, Expect], **kwargs: object) -> None:
        step_tuple = steps if isinstance(steps, tuple) else (steps,)
        cases.append(Case(id, category, step_tuple, expect, **kwargs))  # type: ignore[arg-type]

    # Malformed and truncated JSON.
    for id, body, says in [
        ("open-brace", b"{", "not valid JSON"),
        ("truncated-list", b"[[1.0, 2.0,", "not valid JSON"),
        ("unclosed-outer", b"[[1, 2, 3]", "not valid JSON"),
        ("stray-bracket", b"]", "not valid JSON"),
        ("missing-value", b'{"a": }', "not valid JSON"),
        ("no-commas", b"[1 2 3]", "not valid JSON"),
        ("single-quotes", b"['a', 'b']", "not valid JSON"),
        ("empty-body", b"", "not valid JSON"),
        ("trailing-garbage", b"[[1, 2, 3]] tail", "not valid JSON"),
    ]:
        add(f"json-{id}", "malformed JSON", post(body), bad_input(says, NOT_JSON))
    add("json-object", "malformed JSON", post(b'{"a": 1}'),
        bad_input("not an array of numbers", NOT_SENTENCES))
    add("json-strings-for-numbers", "malformed JSON", post(b'[["a", "b", "c"]]'),
        bad_input("not an array of numbers", NOT_SENTENCES))
    add("json-ragged", "malformed JSON", post(b"[[1, 2, 3], [1]]"),
        bad_input("not a rectangular array", NOT_SENTENCES))
    add("json-nan-literal", "malformed JSON", post(b'[NaN, "x"]'),
        bad_input("not an array of numbers", NOT_SENTENCES))

    # Deep nesting: deeper than the parser recurses, and deeper than numpy's 64 dimensions.
    add("json-nested-100k", "deep nesting", post(json_nested(100_000)),
        bad_input("nested too deeply", NOT_JSON))
    add("json-objects-nested-50k", "deep nesting", post(b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        bad_input("nested too deeply", NOT_JSON))
    add("json-nested-70", "deep nesting", post(json_nested(70)),
        bad_input("maximum number of dimension", NOT_SENTENCES))
    add("json-nested-strings-900", "deep nesting", post(json_nested(900, b'"s"')),
        bad_input("not a rectangular array", NOT_SENTENCES))

    # Invalid UTF-8 where the toolkit decodes text (S10).
    for id, body in [
        ("bom-ff-fe", b"\xff\xfe[[1, 2, 3]]"),
        ("lone-continuation", b'["\x80"]'),
        ("overlong-slash", b'["\xc0\xaf"]'),
        ("encoded-surrogate", b'["\xed\xa0\x80"]'),
        ("latin-1", b'["caf\xe9"]'),
    ]:
        add(f"utf8-{id}", "invalid UTF-8", post(body),
            {"default": Expect(500, "codec can't decode"), "strict": Expect(400, "not valid UTF-8"),
             "inference": Expect(500, "codec can't decode")},
            notes="S10: the body is decoded before input_fn; a handler error in the DLC's mode")
    add("utf8-csv", "invalid UTF-8", post(b"1,2,\xff", "text/csv"),
        {"default": Expect(500, "codec can't decode"), "strict": Expect(400, "not valid UTF-8"),
         "inference": Expect(500, "codec can't decode")})

    # NUL bytes.
    add("nul-in-json", "NUL bytes", post(b"[[1, \x00 2, 3]]"),
        bad_input("not valid JSON", NOT_JSON))
    add("nul-escaped-in-string", "NUL bytes", post(b'"\\u0000"'),
        {**bad_input("not an array of numbers"), "inference": SERVED})
    add("nul-in-csv", "NUL bytes", post(b"1,2,\x003", "text/csv"),
        bad_input("not a table of numbers", UNSUPPORTED_TYPE))
    add("nul-only-octets", "NUL bytes", post(bytes(4096), "application/octet-stream"),
        bad_input("not supported", UNSUPPORTED_TYPE, strict=415))
    add("nul-in-header-value", "NUL bytes",
        post(GOOD_DEFAULT_BODY, headers=(("X-Evil", "a\x00b"),)), HTTP_400)
    add("nul-in-path", "NUL bytes", get("/ping\x00"), HTTP_400, methods=("GET",))

    # Huge strings.
    add("huge-json-string", "huge strings", lambda: post(b'"' + b"a" * (LIMIT - 2) + b'"'),
        {**bad_input("not an array of numbers"), "inference": SERVED})
    add("huge-json-integer", "huge strings", post(b"[" + b"7" * 100_000 + b"]"),
        bad_input("digits", NOT_JSON),
        notes="inference: json.loads raises ValueError, not JSONDecodeError, past 4300 digits")
    add("huge-json-float", "huge strings", post(b"[1." + b"1" * 1_000_000 + b", 2, 3]"),
        {"default": SERVED, "strict": SERVED, "inference": NOT_SENTENCES})
    add("body-exactly-6-mib", "huge strings",
        lambda: post(padded_to(GOOD_DEFAULT_BODY, LIMIT)),
        {"default": SERVED, "strict": SERVED})
    add("sentences-exactly-6-mib", "huge strings",
        lambda: post(padded_to(GOOD_SENTENCES, LIMIT)),
        {"inference": SERVED})
    add("body-6-mib-plus-1", "huge strings",
        lambda: post(padded_to(GOOD_DEFAULT_BODY, LIMIT + 1)),
        {"*": Expect(413, "at most 6291456 bytes", closes=False)})
    add("long-header-value", "huge strings",
        post(GOOD_DEFAULT_BODY, headers=(("X-Long", "v" * 12_000),)), GOOD_ANY)

    # Wrong and missing Content-Type (S8, S10, S20, S22).
    add("ctype-missing", "content type", post(GOOD_DEFAULT_BODY, None),
        bad_input("Content type None is not supported", UNSUPPORTED_TYPE, strict=415))
    add("ctype-json-charset", "content type",
        post(GOOD_DEFAULT_BODY, "application/json; charset=utf-8"),
        bad_input("is not supported", NOT_SENTENCES, strict=415),
        notes="the toolkit matches the type exactly (S10)")
    add("ctype-uppercase", "content type", post(GOOD_SENTENCES, "APPLICATION/JSON"),
        {**bad_input("is not supported", strict=415), "inference": SERVED})
    add("ctype-text-plain", "content type", post(GOOD_DEFAULT_BODY, "text/plain"),
        bad_input("is not supported", UNSUPPORTED_TYPE, strict=415))
    add("ctype-npy-for-json", "content type", post(GOOD_DEFAULT_BODY, "application/x-npy"),
        bad_input("not a .npy file", UNSUPPORTED_TYPE))
    add("ctype-csv-for-json", "content type", post(GOOD_DEFAULT_BODY, "text/csv"),
        bad_input("not a table of numbers", UNSUPPORTED_TYPE))
    add("ctype-empty", "content type", post(GOOD_DEFAULT_BODY, ""),
        bad_input("is not supported", UNSUPPORTED_TYPE, strict=415))
    add("ctype-two-headers-first-wins", "content type",
        post(GOOD_DEFAULT_BODY, "application/json", headers=(("Content-Type", "text/csv"),)),
        GOOD_ANY, notes="S8: the first matching header")
    add("ctype-8k-long", "content type", post(GOOD_DEFAULT_BODY, "application/" + "x" * 8000),
        bad_input("is not supported", UNSUPPORTED_TYPE, strict=415))
    add("accept-unsupported", "content type",
        post(GOOD_DEFAULT_BODY, headers=(("Accept", "image/png"),)),
        bad_input("Accept image/png is not supported", strict=406))
    add("accept-unsupported-sentences", "content type",
        post(GOOD_SENTENCES, headers=(("Accept", "image/png"),)),
        {"inference": Expect(500, "Accept image/png is not supported")})
    add("accept-5000-types", "content type",
        post(GOOD_DEFAULT_BODY, headers=(("Accept", ",".join(["a/b"] * 2000)),)),
        bad_input("is not supported", strict=406))

    # Lying Content-Length.
    add("length-shorter-than-body", "lying Content-Length",
        post(b"[[1, 2, 3]]\r\n\r\n", content_length=5),
        {**bad_input("not valid JSON", NOT_JSON)},
        also={"*": (Expect(400, INVALID_HTTP, closes=True),)},
        notes="the rest of the body is read as the next request: 400 and close")
    add("length-longer-then-wait", "lying Content-Length",
        (post(b"[[1, 2, 3]]", content_length=100), Pause(BODY_TIMEOUT_S + 3)),
        {"*": Expect(408, "did not arrive within", closes=True)})
    add("length-longer-then-close", "lying Content-Length",
        post(b"[[1, 2, 3]]", content_length=100), {"*": Expect(None)}, hang_up="fin")
    add("length-negative", "lying Content-Length",
        post(b"[]", headers=(("Content-Length", "-1"),)), HTTP_400)
    add("length-not-a-number", "lying Content-Length",
        post(b"[]", headers=(("Content-Length", "abc"),)), HTTP_400)
    add("length-twice-differing", "lying Content-Length",
        post(b"[]", headers=(("Content-Length", "2"), ("Content-Length", "3"))), HTTP_400)
    add("length-and-chunked", "lying Content-Length",
        post(chunked(GOOD_DEFAULT_BODY),
             headers=(("Content-Length", "3"), ("Transfer-Encoding", "chunked"))),
        {"*": Expect(400, "both Content-Length and Transfer-Encoding", closes=True)},
        notes="RFC 9112 6.3: h11 would take the chunked framing; refused as a smuggling attempt")
    add("length-20-digits-no-body", "lying Content-Length",
        post(b"", headers=(("Content-Length", "9" * 20),)),
        {"*": Expect(413, "at most 6291456 bytes", closes=False)})
    add("length-7-mib-sent", "lying Content-Length", lambda: post(bytes(7 * MIB)),
        {"*": Expect(413, "at most 6291456 bytes", closes=False)})
    add("length-7-mib-sent-connection-close", "lying Content-Length",
        lambda: post(bytes(7 * MIB), headers=(("Connection", "close"),)),
        {"*": Expect(413, "at most 6291456 bytes", closes=True)},
        notes="what urllib sends: the body is drained so the 413 is read, not reset")

    # Chunked bodies.
    add("chunked-7-mib", "chunked over the limit",
        lambda: post(chunked(bytes(7 * MIB)), headers=(("Transfer-Encoding", "chunked"),)),
        {"*": Expect(413, "more than 6291456", closes=False)})
    add("chunked-7-mib-connection-close", "chunked over the limit",
        lambda: post(chunked(bytes(7 * MIB)),
                     headers=(("Transfer-Encoding", "chunked"), ("Connection", "close"))),
        {"*": Expect(413, "more than 6291456", closes=True)})
    add("chunked-16-mib-4k-chunks", "chunked over the limit",
        lambda: post(chunked(bytes(16 * MIB), chunk_size=4096),
                     headers=(("Transfer-Encoding", "chunked"),)),
        {"*": Expect(413, "more than 6291456")})
    add("chunked-good-three-chunks", "chunked over the limit",
        post(chunked(GOOD_DEFAULT_BODY, chunk_size=5), headers=(("Transfer-Encoding", "chunked"),)),
        GOOD_ANY)
    add("chunked-bad-size", "chunked over the limit",
        post(b"zz\r\nabc\r\n0\r\n\r\n", headers=(("Transfer-Encoding", "chunked"),)), HTTP_400)
    add("chunked-promises-1-gib-then-waits", "chunked over the limit",
        (post(b"40000000\r\n[[1", headers=(("Transfer-Encoding", "chunked"),)),
         Pause(BODY_TIMEOUT_S + 3)),
        {"*": Expect(408, "did not arrive within", closes=True)})
    add("chunked-extensions", "chunked over the limit",
        post(b"5;name=value\r\n[[1, \r\n6\r\n2, 3]]\r\n0\r\n\r\n",
             headers=(("Transfer-Encoding", "chunked"),)),
        GOOD_ANY)

    # .npy with pickled objects, and other lying .npy files (S20 Beyond: allow_pickle=False).
    add("npy-pickled-object-runs-code", "npy pickles", post(npy_pickle(), "application/x-npy"),
        bad_input("pickled Python objects", UNSUPPORTED_TYPE))
    add("npy-shape-1e12-16-bytes", "npy pickles",
        post(npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }",
                        bytes(16)), "application/x-npy"),
        bad_input("truncated", UNSUPPORTED_TYPE))
    add("npy-header-code", "npy pickles",
        post(npy_header("{'descr': '<f8', 'fortran_order': False, "
                        "'shape': (__import__('os').system('touch /tmp/x'),), }", bytes(8)),
             "application/x-npy"),
        bad_input("not a .npy file", UNSUPPORTED_TYPE))
    add("npy-header-4-gib-long", "npy pickles",
        post(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'", "application/x-npy"),
        bad_input("not a .npy file", UNSUPPORTED_TYPE))
    add("npy-truncated-header", "npy pickles", post(b"\x93NUMPY\x01\x00\x76\x00{'de",
                                                    "application/x-npy"),
        bad_input("not a .npy file", UNSUPPORTED_TYPE))
    add("npy-unicode-dtype", "npy pickles",
        post(_npy(np.array(["a", "b", "c"])), "application/x-npy"),
        bad_input("send numbers", UNSUPPORTED_TYPE))
    add("npy-structured-dtype", "npy pickles",
        post(_npy(np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")])), "application/x-npy"),
        bad_input("send numbers", UNSUPPORTED_TYPE))
    add("npy-good-float32", "npy pickles",
        post(_npy(np.array([[1, 2, 3]], dtype=np.float32)), "application/x-npy"), GOOD_ANY)
    add("npz-with-pickle", "npy pickles", post(npz_pickle(), "application/x-npz"),
        bad_input("pickled Python objects", UNSUPPORTED_TYPE))

    # .npz zip bombs.
    add("npz-bomb-512-mib", "npz zip bombs", lambda: post(npz_zip_bomb(), "application/x-npz"),
        bad_input("zip bomb", UNSUPPORTED_TYPE))
    add("npz-member-lies-about-size", "npz zip bombs",
        lambda: post(npz_lying_size(), "application/x-npz"),
        bad_input("not a valid .npz archive", UNSUPPORTED_TYPE))
    add("npz-5000-members", "npz zip bombs",
        lambda: post(npz_many_members(), "application/x-npz"),
        bad_input("sparse .npz", UNSUPPORTED_TYPE))
    add("npz-not-a-zip", "npz zip bombs", post(b"PK\x03\x04garbage", "application/x-npz"),
        bad_input("not a valid .npz archive", UNSUPPORTED_TYPE))
    add("npz-good-sparse", "npz zip bombs", lambda: post(npz_sparse(), "application/x-npz"),
        {"default": Expect(500, "sparse matrix"), "strict": Expect(500, "sparse matrix"),
         "inference": UNSUPPORTED_TYPE},
        notes="S20: as on the DLC, the default input_fn cannot make a tensor of it (500)")

    # CSV bombs.
    add("csv-ragged-rows", "CSV bombs", post(b"1,2,3\n4,5\n", "text/csv"),
        bad_input("not a table of numbers", UNSUPPORTED_TYPE))
    add("csv-quoted", "CSV bombs", post(b'"1","2","3"\n', "text/csv"),
        bad_input("not a table of numbers", UNSUPPORTED_TYPE))
    add("csv-formula", "CSV bombs", post(b"=cmd|' /C calc'!A0,1,2\n", "text/csv"),
        bad_input("not a table of numbers", UNSUPPORTED_TYPE))
    add("csv-1m-empty-lines", "CSV bombs", post(b"\n" * 1_000_000, "text/csv"),
        {"default": Expect(500), "strict": Expect(500), "inference": UNSUPPORTED_TYPE},
        notes="an empty table reaches the model, whose error is a 500 it raised")
    add("csv-one-row-3m-columns", "CSV bombs",
        lambda: post(b"1," * (3 * MIB - 1) + b"1", "text/csv"),
        {"default": Expect(500), "strict": Expect(500), "inference": UNSUPPORTED_TYPE},
        notes="decodes; the model refuses the shape (a 500 the handler raised)")
    add("csv-rows-whose-answer-exceeds-6-mib", "CSV bombs",
        post(b"1,2,3\n" * 600_000, "text/csv"),
        {"default": Expect(500, "at most 6291456"), "strict": Expect(500, "at most 6291456"),
         "inference": UNSUPPORTED_TYPE},
        notes="S4: 1.8 MB in, more than 6 MiB out: the response limit answers")
    add("csv-good", "CSV bombs", post(b"1,2,3\r\n", "text/csv"), GOOD_ANY)

    # Bad methods and paths (S7).
    not_allowed = {"*": Expect(405, "method is not allowed")}
    not_found = {"*": Expect(404, "not found")}
    add("get-invocations", "bad methods and paths", get("/invocations"), not_allowed,
        methods=("GET",))
    add("put-invocations", "bad methods and paths",
        post(GOOD_DEFAULT_BODY).replace(b"POST", b"PUT", 1), not_allowed)
    add("delete-ping", "bad methods and paths", request_bytes("DELETE", "/ping"), not_allowed)
    add("post-ping", "bad methods and paths", post(b"{}", path="/ping"), not_allowed)
    add("unknown-method", "bad methods and paths", request_bytes("BREW", "/ping"), not_allowed)
    add("method-bad-chars", "bad methods and paths", request_bytes("G(T", "/ping"), HTTP_400)
    add("unknown-path", "bad methods and paths", get("/nope"), not_found, methods=("GET",))
    add("dot-dot-path", "bad methods and paths", get("/../../etc/passwd"), not_found,
        methods=("GET",))
    add("encoded-dot-dot", "bad methods and paths", get("/docs-assets/%2e%2e/%2e%2e/etc/passwd"),
        not_found, methods=("GET",))
    add("bad-percent-escape", "bad methods and paths", get("/%zz"), not_found, methods=("GET",))
    add("path-8000", "bad methods and paths", get("/" + "a" * 8000), not_found, methods=("GET",))
    add("path-10k", "bad methods and paths", get("/" + "a" * 10_000),
        {"*": Expect(414, "request target is", closes=True)}, methods=("GET",))
    add("path-20k", "bad methods and paths", get("/" + "a" * 20_000),
        {"*": Expect(414, "request target is", closes=True, or_status=400)}, methods=("GET",))
    add("absolute-form-target", "bad methods and paths", get("http://example.com/nope"),
        not_found, methods=("GET",))
    add("non-ascii-path", "bad methods and paths",
        b"GET /p\xc3\xafng HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_400, methods=("GET",))
    add("options-star", "bad methods and paths", request_bytes("OPTIONS", "*"), not_found)
    add("head-ping", "bad methods and paths", request_bytes("HEAD", "/ping"),
        {"*": Expect(405)}, methods=("HEAD",))

    # Huge or many headers.
    add("header-64k", "huge or many headers", get("/ping", (("X-Big", "v" * 65536),)),
        {"*": Expect(431, "headers are", closes=True, or_status=400)}, methods=("GET",))
    add("headers-100", "huge or many headers",
        get("/ping", tuple((f"X-H{index}", "1") for index in range(100))),
        {"*": Expect(200, "Healthy")}, methods=("GET",))
    add("headers-500", "huge or many headers",
        get("/ping", tuple((f"X-H{index}", "1") for index in range(500))),
        {"*": Expect(431, "at most 200", closes=True)}, methods=("GET",))
    add("headers-5000", "huge or many headers",
        get("/ping", tuple((f"X-H{index}", "1") for index in range(5000))),
        {"*": Expect(431, "at most 200", closes=True, or_status=400)}, methods=("GET",))
    add("header-without-colon", "huge or many headers",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", HTTP_400, methods=("GET",))
    add("header-name-with-space", "huge or many headers",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", HTTP_400, methods=("GET",))
    add("header-obs-fold", "huge or many headers",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",
        {"*": Expect(200, "Healthy")}, methods=("GET",))
    add("header-latin-1-bytes", "huge or many headers",
        post(GOOD_DEFAULT_BODY, headers=(("X-Amzn-SageMaker-Custom-Attributes", "caf\xe9"),)),
        {"default": SERVED, "strict": Expect(400, "printable ASCII")})
    add("custom-attributes-2000", "huge or many headers",
        post(GOOD_DEFAULT_BODY, headers=(("X-Amzn-SageMaker-Custom-Attributes", "a" * 2000),)),
        {"default": SERVED, "strict": Expect(400, "1024")}, notes="S13")
    add("no-host-http-1.1", "huge or many headers", get("/ping", host=False), HTTP_400,
        methods=("GET",))

    # HTTP versions.
    add("http-1.0-ping", "HTTP versions", get("/ping", version="HTTP/1.0", host=False),
        {"*": Expect(200, "Healthy", closes=True)}, methods=("GET",))
    add("http-1.0-invocation", "HTTP versions", post(GOOD_DEFAULT_BODY, version="HTTP/1.0"),
        {"default": Expect(200, closes=True), "strict": Expect(200, closes=True)})
    add("http-1.0-7-mib", "HTTP versions", lambda: post(bytes(7 * MIB), version="HTTP/1.0"),
        {"*": Expect(413, "at most 6291456", closes=True)})
    add("http-0.9", "HTTP versions", b"GET /ping\r\n\r\n", HTTP_400, methods=("GET",))
    add("http-2.0-line", "HTTP versions", get("/ping", version="HTTP/2.0"),
        {"*": Expect(505, "HTTP/2.0 is not supported", closes=True)}, methods=("GET",))
    add("http-2-preface", "HTTP versions", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        {"*": Expect(505, "HTTP/2.0 is not supported", closes=True)})
    add("tls-client-hello", "HTTP versions",
        bytes.fromhex("16030100f0010000ec0303") + bytes(32) + b"\x00" * 200, HTTP_400)
    add("expect-100-continue-good", "HTTP versions",
        (post(b"", headers=(("Expect", "100-continue"),), content_length=len(GOOD_DEFAULT_BODY)),
         Pause(0.2), GOOD_DEFAULT_BODY), GOOD_ANY, stop_when_answered=False)
    add("expect-100-continue-7-mib", "HTTP versions",
        post(b"", headers=(("Expect", "100-continue"),), content_length=7 * MIB),
        {"*": Expect(413, "at most 6291456", closes=True)})

    # Pipelining.
    ping = get("/ping")
    healthy = Expect(200, "Healthy")
    add("pipelined-3-pings", "pipelining", ping * 3, {"*": healthy},
        also={"*": (healthy, healthy)}, methods=("GET",))
    add("pipelined-20-pings", "pipelining", ping * 20, {"*": healthy},
        also={"*": (healthy,) * 19}, methods=("GET",))
    add("pipelined-good-bad-ping", "pipelining",
        post(GOOD_DEFAULT_BODY) + post(b"{") + ping,
        {"default": SERVED, "strict": SERVED},
        also={"default": (Expect(500, "not valid JSON"), healthy),
              "strict": (Expect(400, "not valid JSON"), healthy)},
        methods=("POST", "POST", "GET"))
    add("pipelined-sentences-bad-ping", "pipelining",
        post(GOOD_SENTENCES) + post(b"{") + ping, {"inference": SERVED},
        also={"inference": (NOT_JSON, healthy)}, methods=("POST", "POST", "GET"))
    add("pipelined-then-garbage", "pipelining", ping + b"\x16\x03\x01garbage\r\n\r\n",
        {"*": healthy}, also={"*": (Expect(400, INVALID_HTTP, closes=True),)},
        methods=("GET",))
    add("pipelined-after-413", "pipelining",
        lambda: post(chunked(bytes(7 * MIB)), headers=(("Transfer-Encoding", "chunked"),))
        + ping,
        {"*": Expect(413, "more than 6291456")}, also={"*": (healthy,)},
        methods=("POST", "GET"))

    # Clients that disconnect.
    add("hang-up-mid-body", "disconnects", post(GOOD_DEFAULT_BODY, content_length=1000),
        {"*": Expect(None)}, hang_up="fin")
    add("reset-mid-body", "disconnects", lambda: post(bytes(3 * MIB), content_length=6 * MIB),
        {"*": Expect(None)}, hang_up="rst")
    add("hang-up-mid-headers", "disconnects", b"POST /invocations HTTP/1.1\r\nHost: x\r\nCont",
        {"*": Expect(None)}, hang_up="fin")
    add("hang-up-before-response", "disconnects", post(GOOD_DEFAULT_BODY), {"*": Expect(None)},
        hang_up="rst")
    add("hang-up-mid-chunked", "disconnects",
        post(b"100\r\n[[1, 2", headers=(("Transfer-Encoding", "chunked"),)),
        {"*": Expect(None)}, hang_up="fin")

    # Slow clients.
    one_byte_a_second: list[Step] = [post(b"", content_length=len(GOOD_DEFAULT_BODY))]
    for byte in GOOD_DEFAULT_BODY:
        one_byte_a_second += [Pause(1.0), bytes([byte])]
    add("slowloris-body-one-byte-a-second", "slow clients", tuple(one_byte_a_second),
        {"*": Expect(408, "did not arrive within", closes=True)}, timeout_s=BODY_TIMEOUT_S + 5)
    quick_trickle: list[Step] = []
    for byte in post(GOOD_DEFAULT_BODY):
        quick_trickle += [bytes([byte])]
    add("trickle-good-request-byte-by-byte", "slow clients", tuple(quick_trickle), GOOD_ANY)
    slow_headers: list[Step] = [b"GET /ping HTTP/1.1\r\nHost: x\r\n"]
    for _ in range(3):
        slow_headers += [Pause(1.0), b"X: y\r\n"]
    add("slowloris-headers-3-s", "slow clients", tuple(slow_headers), {"*": Expect(None)},
        timeout_s=1.0, methods=("GET",),
        notes="uvicorn has no header timeout: the connection stays open, others are served")

    return cases


CASES = _cases()
CATEGORIES = sorted({case.category for case in CASES})
