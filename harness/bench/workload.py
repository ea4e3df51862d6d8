"""What a load run sends: a cycle of requests, each with its body, headers and, optionally, the
status it must get (the soak's mix of good and bad requests)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# The blog's example request (a JSON string): what `smlocal bench` sends by default.
BLOG_SENTENCE = "Somebody just left - guess who."
JSON = "application/json"
# Reading more than this many sentences is a mistake, not a workload.
MAX_SENTENCES = 100_000


class WorkloadError(ValueError):
    """A body or sentence file that cannot be used."""


@dataclass(frozen=True)
class BenchRequest:
    """One request; `expected_status` None means any answer is acceptable."""

    body: bytes
    content_type: str | None = JSON
    accept: str | None = JSON
    label: str = "request"
    expected_status: int | None = None

    def describe(self) -> str:
        return (f"{len(self.body)} B {self.content_type or '(no Content-Type)'} -> "
                f"{self.accept or '(no Accept)'}")


def json_sentence(sentence: str, *, content_type: str | None = JSON,
                  accept: str | None = JSON) -> BenchRequest:
    """One sentence as the blog sends it: a JSON string."""
    return BenchRequest(json.dumps(sentence).encode("utf-8"), content_type, accept,
                        label="sentence")


def default_requests(content_type: str | None = JSON, accept: str | None = JSON
                     ) -> list[BenchRequest]:
    return [json_sentence(BLOG_SENTENCE, content_type=content_type, accept=accept)]


def read_sentences(path: Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file, one sentence each."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkloadError(f"sentence file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"cannot read sentence file {path}: {exc}") from exc
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise WorkloadError(f"sentence file {path} has no sentences")
    if len(sentences) > MAX_SENTENCES:
        raise WorkloadError(f"sentence file {path} has {len(sentences)} sentences; "
                            f"at most {MAX_SENTENCES}")
    return sentences


def sentence_requests(sentences: Sequence[str], content_type: str | None = JSON,
                      accept: str | None = JSON) -> list[BenchRequest]:
    return [json_sentence(sentence, content_type=content_type, accept=accept)
            for sentence in sentences]


def body_request(body: str, content_type: str | None, accept: str | None) -> BenchRequest:
    """A literal body, sent as given (UTF-8)."""
    return BenchRequest(body.encode("utf-8"), content_type, accept, label="body")
