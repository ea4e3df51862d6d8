"""Handler fixtures for the harness tests: a tiny handler (real code that needs no torch
model, served by the real runtime) and contract files for it and for the project's handlers."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"

# A handler that needs no torch model: rows [scale * x, -scale * x], 415/400 with a status_code.
TINY_HANDLER = """
import json
import os


class RequestError(Exception):
    def __init__(self, status_code, message):
        super().__init__(message)
        self.status_code = status_code


def model_fn(model_dir):
    with open(os.path.join(model_dir, "scale.json")) as file:
        return json.load(file)["scale"]


def input_fn(body, content_type):
    if (content_type or "").split(";")[0].strip() != "application/json":
        raise RequestError(415, f"unsupported content type {content_type!r}; send JSON")
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        values = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from exc
    return values if isinstance(values, list) else [values]


def predict_fn(values, scale):
    return [[scale * value, -scale * value] for value in values]
"""

TINY_CONTRACT = """
request: {json: 2.0, content_type: application/json}
accept: [application/json, text/csv, application/x-npy]
reject:
  content_type: {text/plain: 415}
  missing_content_type: 415
  accept: {text/html: 500}
cases:
  - name: one value is one row
    json: 2.0
    expect: {shape: [1, 2], predicted_class: 0, json_path: {"$[0][1]": -6.0}}
  - name: negative values are class 1
    json: [-1.0, 4.0]
    expect: {shape: [2, 2], predicted_class: [1, 0]}
  - name: malformed JSON is refused with 400
    rule: S24
    text: "[1,"
    expect: {status: 400, body_contains: not valid JSON}
"""

# The project's handlers on any BERT classifier (statuses and shapes, no classes).
COLA_ANY_MODEL_CONTRACT_FILE = Path(__file__).parent / "testing" / "cola_any_model.yaml"
COLA_ANY_MODEL_CONTRACT = COLA_ANY_MODEL_CONTRACT_FILE.read_text()


@pytest.fixture
def tiny_model(tmp_path: Path) -> Callable[..., Path]:
    """A model directory (scale.json) with `source` as code/inference.py; the tiny handler by
    default, with `replace` edits applied to make broken variants."""

    def make(source: str = TINY_HANDLER, *, scale: float = 3.0, name: str = "model",
             replace: dict[str, str] | None = None) -> Path:
        text = textwrap.dedent(source)
        for old, new in (replace or {}).items():
            assert old in text, f"the edit {old!r} does not apply"
            text = text.replace(old, new)
        model_dir = tmp_path / name
        (model_dir / "code").mkdir(parents=True)
        (model_dir / "scale.json").write_text(json.dumps({"scale": scale}))
        (model_dir / "code" / "inference.py").write_text(text)
        return model_dir

    return make


@pytest.fixture
def contract_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str = TINY_CONTRACT, name: str = "contract.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(scope="session")
def handler_sources() -> SimpleNamespace:
    return SimpleNamespace(
        root=ROOT, handlers=HANDLERS, tiny_handler=TINY_HANDLER, tiny_contract=TINY_CONTRACT,
        cola_any_model_contract=COLA_ANY_MODEL_CONTRACT,
    )
