"""Differential contract runs: the same suite against two targets, compared case by case.

`smlocal contract --compare` serves one model and one handler directory from the smlocal image
and from the reference image (the AWS stack), runs every check of the contract against both,
and prints where their answers differ: status, media type, body shape (and the verdict, which
also catches equal-looking answers with different values). A difference is expected when one of
the runtime's deliberate differences (`KNOWN_DIFFERENCES`, each listed in docs/fidelity.md with
its reason and evidence) accounts for every field that differs; any other is a fidelity bug, of
the runtime or of our reading of the rules.

    with AsgiTarget.serving(...) as ours, HttpTarget(url) as reference:
        comparison = compare(ours, reference, contract)
    print(comparison.render())
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness.testing.contract import Contract, Request
from harness.testing.expectations import first_line, shorten
from harness.testing.media import UndecodableBody, decode, media_type, shape
from harness.testing.report import CheckResult
from harness.testing.suite import MAX_BODY_BYTES, Check, Probe, build_checks
from harness.testing.target import Reply, Target, TargetError, TargetUnreachable

# TorchServe's own cap on a request body (its max_request_size default), above S4's 6 MiB.
TORCHSERVE_MAX_REQUEST_BYTES = 6_553_500

STATUS = "status"
CONTENT_TYPE = "content type"
BODY = "body"
VERDICT = "verdict"


@dataclass(frozen=True)
class Answer:
    """What the comparison looks at in a reply: status, media type (no parameters; '' when the
    reply has no Content-Type), the body's shape, and its first line (shown, not compared)."""

    status: int | None  # None: no answer at all
    media_type: str = ""
    body: str = ""
    message: str = ""

    @classmethod
    def of(cls, reply: Reply) -> Answer:
        message = first_line(reply) if reply.status >= 400 else ""
        return cls(reply.status, media_type(reply.content_type), body_shape(reply),
                   shorten(message, 100))

    @classmethod
    def none(cls, problem: str) -> Answer:
        return cls(None, body="no answer", message=shorten(problem, 100))

    def describe(self) -> str:
        status = "no answer" if self.status is None else str(self.status)
        kind = self.media_type or "no Content-Type"
        said = f": {self.message}" if self.message else ""
        return f"{status} {kind}, {self.body}{said}"


def body_shape(reply: Reply) -> str:
    """`empty`, `array [2, 2]`, `JSON object {status}`, `JSON string`, or `text` (errors)."""
    if not reply.body:
        return "empty"
    try:
        value = decode(reply.body, reply.content_type)
    except UndecodableBody:
        # TorchServe sends handler errors without a Content-Type: say what the bytes are.
        try:
            value = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError):
            return "text"
    if isinstance(value, dict):
        return "JSON object {" + ", ".join(sorted(map(str, value))) + "}"
    dims = shape(value)
    if dims is None:
        return "ragged list"
    if not dims:
        return f"JSON {type(value).__name__}"
    return f"array {dims}"


@dataclass(frozen=True)
class KnownDifference:
    """A deliberate difference of the smlocal runtime from the AWS stack (docs/fidelity.md):
    which answer fields it accounts for, and the test of whether a case shows it."""

    id: str
    rules: tuple[str, ...]
    summary: str
    fields: frozenset[str]
    applies: Callable[[Request | None, Answer, Answer], bool]


def _over_6_mib(request: Request | None, ours: Answer, reference: Answer) -> bool:
    size = len(request.body) if request is not None else 0
    return (MAX_BODY_BYTES < size <= TORCHSERVE_MAX_REQUEST_BYTES and ours.status == 413
            and reference.status != 413)


def _status_code_honoured(request: Request | None, ours: Answer, reference: Answer) -> bool:
    return (ours.status is not None and 400 <= ours.status < 600 and ours.status != 500
            and reference.status == 500 and ours.message == reference.message)


def _error_content_type(request: Request | None, ours: Answer, reference: Answer) -> bool:
    return (ours.status is not None and ours.status >= 400 and reference.status is not None
            and reference.status >= 400 and ours.media_type == "text/plain"
            and reference.media_type == "")


KNOWN_DIFFERENCES: tuple[KnownDifference, ...] = (
    KnownDifference(
        "F1", ("S4",),
        "a body over 6 MiB gets 413 from the container itself; TorchServe takes up to "
        "6,553,500 bytes (SageMaker's runtime API refuses the rest before the container)",
        frozenset({STATUS, CONTENT_TYPE, BODY, VERDICT}), _over_6_mib),
    KnownDifference(
        "F2", ("S24",),
        "any exception with a `status_code` sets the status; the toolkit honours only its "
        "BaseInferenceToolkitError and answers 500 with the same message",
        frozenset({STATUS, VERDICT}), _status_code_honoured),
    KnownDifference(
        "F3", ("S23",),
        "error bodies are labelled text/plain; TorchServe sends them without a Content-Type",
        frozenset({CONTENT_TYPE}), _error_content_type),
)


@dataclass(frozen=True)
class CaseComparison:
    """One check run against both targets."""

    check: Check
    ours: CheckResult
    reference: CheckResult
    ours_answer: Answer
    reference_answer: Answer
    differences: frozenset[str]
    explained_by: tuple[KnownDifference, ...] = ()

    @property
    def expected(self) -> bool:
        covered: set[str] = set()
        for known in self.explained_by:
            covered |= known.fields
        return self.differences <= covered

    @property
    def known_ids(self) -> tuple[str, ...]:
        return tuple(known.id for known in self.explained_by)


@dataclass(frozen=True)
class Comparison:
    ours_name: str
    reference_name: str
    contract: str
    cases: tuple[CaseComparison, ...]
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def differing(self) -> tuple[CaseComparison, ...]:
        return tuple(case for case in self.cases if case.differences)

    @property
    def unexpected(self) -> tuple[CaseComparison, ...]:
        return tuple(case for case in self.differing if not case.expected)

    @property
    def agrees(self) -> bool:
        """No difference that docs/fidelity.md does not list."""
        return not self.unexpected

    def failing(self, side: str) -> set[str]:
        """The ids of the checks that failed on `side` ('ours' or 'reference')."""
        return {getattr(case, side).id for case in self.cases if not getattr(case, side).passed}

    def differences_by_id(self) -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
        """{check id: (differing fields, known difference ids)} for every differing case."""
        return {case.check.id: (case.differences, case.known_ids) for case in self.differing}

    def render(self) -> str:
        lines = [f"contract  {self.contract}", f"ours      {self.ours_name}",
                 f"reference {self.reference_name}", ""]
        width = max((len(" ".join(case.check.rules) or "case") for case in self.cases),
                    default=4)
        for case in self.cases:
            verdicts = (("pass" if case.ours.passed else "FAIL") + "/"
                        + ("pass" if case.reference.passed else "FAIL"))
            if not case.differences:
                mark = "same"
            elif case.expected:
                mark = "KNOWN " + ",".join(case.known_ids)
            else:
                mark = "DIFFERS"
            rules = " ".join(case.check.rules) or "case"
            lines.append(f"  {mark:<10} {verdicts:<9} {rules:<{width}}  {case.check.name}")
            if case.differences:
                indent = " " * 24
                lines.append(f"{indent}differs in: {', '.join(sorted(case.differences))}")
                lines.append(f"{indent}ours:       {case.ours_answer.describe()}")
                lines.append(f"{indent}reference:  {case.reference_answer.describe()}")
        for note in self.notes:
            lines.append(f"note: {note}")
        known = {known.id: known for case in self.differing for known in case.explained_by}
        lines.append("")
        for known_id in sorted(known):
            item = known[known_id]
            lines.append(f"{item.id} ({' '.join(item.rules)}): {item.summary}")
        lines.append(
            f"{len(self.cases)} checks: {len(self.cases) - len(self.differing)} answered alike, "
            f"{len(self.differing) - len(self.unexpected)} differ as listed in "
            f"docs/fidelity.md, {len(self.unexpected)} differ unexpectedly "
            f"({self.seconds:.1f} s)")
        return "\n".join(lines)


class _Recording:
    """A target that remembers the replies it gave, so a check's own answer can be compared
    (Check.run sends the check's request first, then any reference request)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.replies: list[Reply | TargetError] = []

    def ping(self) -> Reply:
        return self._record(self.target.ping)

    def invoke(self, body: bytes, content_type: str | None = None, accept: str | None = None,
               headers: Mapping[str, str] | None = None) -> Reply:
        return self._record(lambda: self.target.invoke(body, content_type, accept, headers))

    def _record(self, call: Callable[[], Reply]) -> Reply:
        try:
            reply = call()
        except TargetUnreachable:
            raise
        except TargetError as exc:
            self.replies.append(exc)
            raise
        self.replies.append(reply)
        return reply


def _run(check: Check, probe: Probe, recording: _Recording) -> tuple[CheckResult, Answer]:
    recording.replies.clear()
    result = check.run(probe)
    first = recording.replies[0] if recording.replies else TargetError("nothing was sent")
    answer = Answer.none(str(first)) if isinstance(first, TargetError) else Answer.of(first)
    return result, answer


def differing_fields(ours: tuple[CheckResult, Answer],
                     reference: tuple[CheckResult, Answer]) -> frozenset[str]:
    (our_result, our_answer), (ref_result, ref_answer) = ours, reference
    fields = set()
    if our_answer.status != ref_answer.status:
        fields.add(STATUS)
    if our_answer.media_type != ref_answer.media_type:
        fields.add(CONTENT_TYPE)
    if our_answer.body != ref_answer.body:
        fields.add(BODY)
    if our_result.passed != ref_result.passed:
        fields.add(VERDICT)
    return frozenset(fields)


def compare(
    ours: Target,
    reference: Target,
    contract: Contract,
    *,
    ours_name: str = "ours",
    reference_name: str = "reference",
    known: Sequence[KnownDifference] = KNOWN_DIFFERENCES,
) -> Comparison:
    """Every check of `contract` against both targets, in turn, compared. Raises
    TargetUnreachable if either target stops answering at all."""
    started = time.perf_counter()
    recordings = (_Recording(ours), _Recording(reference))
    probes = (Probe(recordings[0]), Probe(recordings[1]))
    cases = []
    for check in build_checks(contract):
        our_side = _run(check, probes[0], recordings[0])
        ref_side = _run(check, probes[1], recordings[1])
        fields = differing_fields(our_side, ref_side)
        explained = tuple(item for item in known
                          if fields and item.applies(check.request, our_side[1], ref_side[1]))
        cases.append(CaseComparison(check, our_side[0], ref_side[0], our_side[1], ref_side[1],
                                    fields, explained))
    return Comparison(ours_name, reference_name, contract.source, tuple(cases),
                      time.perf_counter() - started)


# --- the command ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareOptions:
    model_dir: Path
    code_dir: Path | None = None
    cases: Path | None = None
    image: str = "smlocal:latest"
    reference_image: str = "smlocal-reference:latest"
    env: Mapping[str, str] = field(default_factory=dict)
    wait_s: float = 240.0


def run_compare(options: CompareOptions, contract: Contract, out: TextIO, err: TextIO) -> int:
    """Start a container of each image, compare, print; 0 when every difference is listed,
    1 otherwise. ServingContainerError (exit 2/3) when a container cannot start or get ready."""
    from harness.testing.http import HttpTarget
    from harness.testing.serving_container import start_serving_container

    print(f"starting {options.image} and {options.reference_image} on {options.model_dir} "
          "...", file=err)
    started = [
        start_serving_container(options.image, options.model_dir, code_dir=options.code_dir,
                                env=options.env, name_prefix="smlocal-compare-ours"),
    ]
    try:
        started.append(start_serving_container(
            options.reference_image, options.model_dir, code_dir=options.code_dir,
            env=options.env, name_prefix="smlocal-compare-reference"))
        for served in started:
            seconds = served.wait_ready(options.wait_s)
            print(f"{served.image} ready at {served.url} in {seconds:.1f} s", file=err)
        with HttpTarget(started[0].url) as ours, HttpTarget(started[1].url) as reference:
            comparison = compare(ours, reference, contract,
                                 ours_name=f"{options.image} at {started[0].url}",
                                 reference_name=f"{options.reference_image} at "
                                 f"{started[1].url}")
    finally:
        for served in started:
            served.stop()
    print(comparison.render(), file=out)
    return 0 if comparison.agrees else 1
