"""The contract file (YAML or JSON): what a handler promises its callers.

    request:                        # one request the handler serves; the built-in checks vary it
      json: "Somebody just left - guess who."    # or text: ... / base64: ...
      content_type: application/json
    accept: [application/json, text/csv]         # Accept values it answers (S12, S22)
    default_accept: application/json             # what no Accept (or */*) gets (S9)
    reject:                                      # what it refuses, with which status (S23, S24)
      content_type: {text/plain: 415}
      missing_content_type: 415                  # a request without Content-Type (S8)
      accept: {text/html: 500}
    cases:
      - name: an acceptable sentence is class 1
        rule: S11                                # optional: shown in the report
        json: "Somebody just left - guess who."  # content_type/accept default to request's
        expect: {status: 200, predicted_class: 1, shape: [1, 2],
                 json_path: {"$[0][1]": 0.5}, content_type: application/json,
                 body_contains: "...", headers: {X-Name: value}}

`json` bodies are JSON-encoded, `text` sent as UTF-8, `base64` decoded. Every key is optional
except each case's `name`; `expect.status` defaults to 200.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.testing.jsonpath import JsonPathError, parse

DEFAULT_ACCEPT = "application/json"
JSON_CONTENT_TYPE = "application/json"
_UNSET: Any = object()


class ContractFileError(ValueError):
    """The contract file cannot be read or says something the suite cannot check."""


@dataclass(frozen=True)
class Request:
    body: bytes = b""
    content_type: str | None = None
    accept: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Request:
        return replace(self, **changes)

    def describe(self) -> str:
        parts = [f"{len(self.body)} B" if len(self.body) > 60 else repr(self.body)[1:]]
        parts.append(f"Content-Type {self.content_type}" if self.content_type is not None
                     else "no Content-Type")
        parts.append(f"Accept {self.accept}" if self.accept is not None else "no Accept")
        return ", ".join(parts)


@dataclass(frozen=True)
class Expect:
    status: int = 200
    content_type: str | None = None
    predicted_class: int | tuple[int, ...] | None = None
    shape: tuple[int, ...] | None = None
    json_path: Mapping[str, Any] = field(default_factory=dict)
    body_contains: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str
    rules: tuple[str, ...]
    request: Request
    expect: Expect


@dataclass(frozen=True)
class Contract:
    source: str = "(no contract file)"
    request: Request | None = None
    default_accept: str = DEFAULT_ACCEPT
    accept: tuple[str, ...] = ()
    reject_content_types: Mapping[str, int] = field(default_factory=dict)
    reject_missing_content_type: int | None = None
    reject_accepts: Mapping[str, int] = field(default_factory=dict)
    cases: tuple[Case, ...] = ()


class _Section:
    """A mapping read key by key; whatever is left over is a typo worth reporting."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise ContractFileError(f"{where}: expected a mapping, got {_kind(value)}")
        self.values: dict[str, Any] = dict(value)
        self.where = where
        self.known: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.known.append(key)
        return self.values.pop(key, default)

    def has(self, key: str) -> bool:
        return key in self.values

    def done(self) -> None:
        if self.values:
            unknown = ", ".join(repr(key) for key in self.values)
            raise ContractFileError(
                f"{self.where}: unknown key {unknown} (known: {', '.join(self.known)})"
            )


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _string(value: object, where: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ContractFileError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _status(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise ContractFileError(f"{where}: expected an HTTP status (100-599), got {value!r}")
    return value


def _str_map(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    section = _Section(value, where)
    return {str(key): str(_string(item, f"{where}.{key}", optional=False))
            for key, item in section.values.items()}


def _status_map(value: object, where: str) -> dict[str, int]:
    if value is None:
        return {}
    section = _Section(value, where)
    return {str(key): _status(item, f"{where}[{key!r}]") for key, item in section.values.items()}


def _body(section: _Section) -> tuple[bytes, bool]:
    """The request body and whether it came from `json` (which implies application/json)."""
    section.known.extend(("json", "text", "base64"))
    given = [key for key in ("json", "text", "base64") if section.has(key)]
    if len(given) > 1:
        raise ContractFileError(f"{section.where}: give one of json, text, base64, "
                                f"not {' and '.join(given)}")
    if section.has("json"):
        return json.dumps(section.get("json")).encode("utf-8"), True
    text = section.get("text")
    if text is not None:
        return str(_string(text, f"{section.where}.text")).encode("utf-8"), False
    encoded = section.get("base64")
    if encoded is not None:
        try:
            return base64.b64decode(str(encoded), validate=True), False
        except binascii.Error as exc:
            raise ContractFileError(f"{section.where}.base64: {exc}") from exc
    return b"", False


def _request(section: _Section, defaults: Request | None) -> Request:
    body, from_json = _body(section)
    content_type = section.get("content_type", _UNSET)
    if content_type is _UNSET:
        if defaults is not None:
            content_type = defaults.content_type
        else:
            content_type = JSON_CONTENT_TYPE if from_json else None
    accept = section.get("accept", _UNSET)
    if accept is _UNSET:
        accept = defaults.accept if defaults is not None else None
    return Request(
        body=body,
        content_type=_string(content_type, f"{section.where}.content_type"),
        accept=_string(accept, f"{section.where}.accept"),
        headers=_str_map(section.get("headers"), f"{section.where}.headers"),
    )


def _classes(value: object, where: str) -> int | tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and value and all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        return tuple(value)
    raise ContractFileError(f"{where}: expected a class index or a list of them, got {value!r}")


def _shape(value: object, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in value
    ):
        return tuple(value)
    raise ContractFileError(f"{where}: expected a list of dimensions, got {value!r}")


def _json_paths(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    section = _Section(value, where)
    for path in section.values:
        try:
            parse(str(path))
        except JsonPathError as exc:
            raise ContractFileError(f"{where}: {exc}") from exc
    return {str(path): expected for path, expected in section.values.items()}


def _expect(value: object, where: str) -> Expect:
    section = _Section(value if value is not None else {}, where)
    expect = Expect(
        status=_status(section.get("status", 200), f"{where}.status"),
        content_type=_string(section.get("content_type"), f"{where}.content_type"),
        predicted_class=_classes(section.get("predicted_class"), f"{where}.predicted_class"),
        shape=_shape(section.get("shape"), f"{where}.shape"),
        json_path=_json_paths(section.get("json_path"), f"{where}.json_path"),
        body_contains=_string(section.get("body_contains"), f"{where}.body_contains"),
        headers=_str_map(section.get("headers"), f"{where}.headers"),
    )
    section.done()
    return expect


def _rules(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(str(_string(item, where, optional=False)) for item in items)


def _case(value: object, where: str, defaults: Request | None) -> Case:
    section = _Section(value, where)
    name = _string(section.get("name"), f"{where}.name")
    if not name:
        raise ContractFileError(f"{where}: every case needs a name")
    case = Case(
        name=name,
        rules=_rules(section.get("rule"), f"{where}.rule"),
        request=_request(section, defaults),
        expect=_expect(section.get("expect"), f"{where}.expect"),
    )
    section.done()
    return case


def parse_contract(data: object, source: str) -> Contract:
    """A contract from the parsed YAML/JSON document; errors name the key (`cases[2].expect`)."""
    top = _Section(data if data is not None else {}, source)
    request = None
    raw_request = top.get("request")
    if raw_request is not None:
        request_section = _Section(raw_request, f"{source}: request")
        request = _request(request_section, None)
        request_section.done()
    accept = top.get("accept")
    if accept is not None and not (
        isinstance(accept, list) and all(isinstance(item, str) for item in accept)
    ):
        raise ContractFileError(f"{source}: accept: expected a list of media types")
    default_accept = _string(top.get("default_accept"), f"{source}: default_accept")
    reject = _Section(top.get("reject") or {}, f"{source}: reject")
    missing = reject.get("missing_content_type")
    contract = Contract(
        source=source,
        request=request,
        default_accept=default_accept or DEFAULT_ACCEPT,
        accept=tuple(accept or ()),
        reject_content_types=_status_map(reject.get("content_type"),
                                         f"{reject.where}.content_type"),
        reject_missing_content_type=(
            None if missing is None else _status(missing, f"{reject.where}.missing_content_type")
        ),
        reject_accepts=_status_map(reject.get("accept"), f"{reject.where}.accept"),
        cases=(),
    )
    reject.done()
    raw_cases = top.get("cases") or []
    if not isinstance(raw_cases, list):
        raise ContractFileError(f"{source}: cases: expected a list")
    cases = tuple(
        _case(item, f"{source}: cases[{index}]", request) for index, item in enumerate(raw_cases)
    )
    top.done()
    return replace(contract, cases=cases)


def load_contract(path: Path) -> Contract:
    """Read a contract file (YAML, of which JSON is a subset)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractFileError(f"{path} is not valid YAML/JSON: {exc}") from exc
    return parse_contract(data, str(path))
