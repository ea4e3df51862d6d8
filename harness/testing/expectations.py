"""What a reply must satisfy. Each expectation says what it expects and, when the reply falls
short, what it got instead; the suite reports the first one that fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.testing.contract import Request
from harness.testing.jsonpath import JsonPathError, resolve
from harness.testing.media import (
    UndecodableBody,
    argmax_rows,
    close_enough,
    decode,
    media_type,
    shape,
)
from harness.testing.target import Reply

TRACEBACK_HEADER = "Traceback (most recent call last):"
SHOWN_CHARS = 160

# A reply for another request, sent once per suite run (the reference for "same values").
ReplyFor = Callable[[Request], Reply]


class Expectation(Protocol):
    def describe(self) -> str: ...

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        """None if the reply satisfies the expectation, else what the reply has instead."""
        ...


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(reply: Reply) -> str:
    """What an error body says first: a JSON error's message, else the first text line."""
    try:
        parsed = reply.json()
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"]).strip().split("\n", 1)[0]
    return reply.text.strip().split("\n", 1)[0]


def show(value: Any) -> str:
    return shorten(json.dumps(value) if not isinstance(value, str) else repr(value))


def _decoded(reply: Reply) -> tuple[Any, str | None]:
    try:
        return decode(reply.body, reply.content_type), None
    except UndecodableBody as exc:
        return None, f"a body that is {exc}"


@dataclass(frozen=True)
class Status:
    code: int

    def describe(self) -> str:
        return f"status {self.code}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        if reply.status == self.code:
            return None
        said = first_line(reply)
        return f"status {reply.status}" + (f": {shorten(said)}" if said else " (empty body)")


@dataclass(frozen=True)
class NotStatus:
    code: int

    def describe(self) -> str:
        return f"any status but {self.code}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        return None if reply.status != self.code else f"status {reply.status}: " + shorten(
            first_line(reply))


@dataclass(frozen=True)
class ContentType:
    media_type: str

    def describe(self) -> str:
        return f"Content-Type {self.media_type}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        if media_type(reply.content_type) == media_type(self.media_type):
            return None
        return f"Content-Type {reply.content_type}"


@dataclass(frozen=True)
class Decodes:
    def describe(self) -> str:
        return "a body in the format its Content-Type names"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        return _decoded(reply)[1]


@dataclass(frozen=True)
class SameValuesAs:
    """The same prediction as `reference` gets, whatever the format (S22)."""

    reference: Request

    def describe(self) -> str:
        return f"the same values as for {self.reference.describe()}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        value, problem = _decoded(reply)
        if problem is not None:
            return problem
        reference = reply_for(self.reference)
        if reference.status != 200:
            return f"no reference: the reference request got status {reference.status}"
        expected, problem = _decoded(reference)
        if problem is not None:
            return f"no reference: {problem}"
        if close_enough(value, expected):
            return None
        return f"{show(value)}, reference {show(expected)}"


@dataclass(frozen=True)
class ErrorBody:
    """S23: the body says what went wrong first (the DLC sends the message, then a traceback)."""

    def describe(self) -> str:
        return "an error body that starts with its message"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        said = first_line(reply)
        if not said:
            return "an empty body"
        if said.startswith(TRACEBACK_HEADER):
            return f"a body that starts with the traceback: {shorten(said)}"
        return None


@dataclass(frozen=True)
class BodyContains:
    text: str

    def describe(self) -> str:
        return f"a body containing {self.text!r}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        return None if self.text in reply.text else f"body {shorten(reply.text)!r}"


@dataclass(frozen=True)
class JsonPath:
    path: str
    value: Any

    def describe(self) -> str:
        return f"{self.path} == {show(self.value)}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        decoded, problem = _decoded(reply)
        if problem is not None:
            return problem
        try:
            found = resolve(decoded, self.path)
        except JsonPathError as exc:
            return str(exc)
        return None if close_enough(found, self.value) else f"{self.path} == {show(found)}"


@dataclass(frozen=True)
class Shape:
    dims: tuple[int, ...]

    def describe(self) -> str:
        return f"shape {list(self.dims)}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        decoded, problem = _decoded(reply)
        if problem is not None:
            return problem
        found = shape(decoded)
        if found == list(self.dims):
            return None
        return "a ragged list" if found is None else f"shape {found}: {show(decoded)}"


@dataclass(frozen=True)
class PredictedClass:
    """The argmax of each row; one int for a one-row answer."""

    classes: int | tuple[int, ...]

    def describe(self) -> str:
        shown = self.classes if isinstance(self.classes, int) else list(self.classes)
        return f"predicted class {shown} (argmax of each row)"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        decoded, problem = _decoded(reply)
        if problem is not None:
            return problem
        try:
            found = argmax_rows(decoded)
        except UndecodableBody as exc:
            return str(exc)
        wanted = [self.classes] if isinstance(self.classes, int) else list(self.classes)
        if found == wanted:
            return None
        shown: Any = found[0] if isinstance(self.classes, int) and len(found) == 1 else found
        return f"predicted class {shown} from {show(decoded)}"


@dataclass(frozen=True)
class Header:
    name: str
    value: str

    def describe(self) -> str:
        return f"header {self.name}: {self.value}"

    def mismatch(self, reply: Reply, reply_for: ReplyFor) -> str | None:
        found = reply.headers.get(self.name.lower())
        if found == self.value:
            return None
        return f"no header {self.name}" if found is None else f"header {self.name}: {found}"
