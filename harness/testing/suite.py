"""The contract suite: built-in checks of the SageMaker serving contract, varied from the
contract file's example request, and the file's own cases. It talks to a `Target` only.

Built-in checks (rule ids from the serving contract):
  S2          GET /ping answers 200
  S11 S12     the example request answers 200 in its Accept's format
  S9 S12      no Accept, and Accept */*, answer in the default Accept's format
  S12 S22     each declared Accept answers in that format, with the same values
  S8 S23 S24  each refused Content-Type / Accept (and a missing Content-Type) gets its status,
              with a body that starts with the message
  S4          a body of exactly 6 MiB is served; one byte more is refused with 413
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.testing.contract import Case, Contract, Request
from harness.testing.expectations import (
    BodyContains,
    ContentType,
    Decodes,
    ErrorBody,
    Expectation,
    Header,
    JsonPath,
    NotStatus,
    PredictedClass,
    SameValuesAs,
    Shape,
    Status,
)
from harness.testing.media import is_json
from harness.testing.report import CheckResult, Report, check_id
from harness.testing.target import Reply, Target, TargetError, TargetUnreachable

# S4: the SageMaker runtime API's cap on a request body.
MAX_BODY_BYTES = 6 * 1024 * 1024
ANY = "*/*"


class Probe:
    """Sends requests to the target, remembering each reply so that a check's reference
    request (the one whose values others must match) is sent once per run."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._replies: dict[tuple[object, ...], Reply] = {}

    @staticmethod
    def _key(request: Request) -> tuple[object, ...]:
        return (request.body, request.content_type, request.accept,
                tuple(sorted(request.headers.items())))

    def send(self, request: Request | None) -> Reply:
        if request is None:
            return self.target.ping()
        reply = self.target.invoke(request.body, request.content_type, request.accept,
                                   dict(request.headers) or None)
        if len(request.body) <= MAX_BODY_BYTES // 64:  # keep the big S4 bodies out of memory
            self._replies[self._key(request)] = reply
        return reply

    def reply(self, request: Request) -> Reply:
        cached = self._replies.get(self._key(request))
        return cached if cached is not None else self.send(request)


@dataclass(frozen=True)
class Check:
    """One request (None: GET /ping) and what its reply must satisfy."""

    name: str
    rules: tuple[str, ...]
    request: Request | None
    expectations: tuple[Expectation, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return check_id(self.name, self.rules)

    def run(self, probe: Probe) -> CheckResult:
        started = time.perf_counter()
        described = "GET /ping" if self.request is None else "POST /invocations " + (
            self.request.describe())
        try:
            reply = probe.send(self.request)
            for expectation in self.expectations:
                actual = expectation.mismatch(reply, probe.reply)
                if actual is not None:
                    return CheckResult(self.name, self.rules, False, described,
                                       expectation.describe(), actual,
                                       time.perf_counter() - started)
        except TargetUnreachable:
            raise
        except TargetError as exc:
            return CheckResult(self.name, self.rules, False, described,
                               "an answer", f"none: {exc}", time.perf_counter() - started)
        return CheckResult(self.name, self.rules, True, described,
                           seconds=time.perf_counter() - started)

    def verify(self, target: Target) -> None:
        """Run against `target` alone; AssertionError with expected and actual if it fails."""
        result = self.run(Probe(target))
        if not result.passed:
            raise AssertionError(result.explain())


def _error_rules(status: int, *extra: str) -> tuple[str, ...]:
    # S23: an exception is a 500; S24: a handler's error with its own status.
    return (*extra, "S23" if status == 500 else "S24")


def _single_media_type(accept: str | None) -> str | None:
    if accept is None or accept.strip() == ANY or "," in accept:
        return None
    return accept


def example_checks(contract: Contract, example: Request) -> list[Check]:
    """The checks varied from the contract's example request."""
    answer_type = _single_media_type(example.accept) or (
        contract.default_accept if example.accept in (None, ANY) else None)
    checks = [Check(
        "the example request is served", ("S11", "S12"), example,
        (Status(200), *((ContentType(answer_type),) if answer_type else ()), Decodes()),
    )]
    for accept, name in ((None, "no Accept"), (ANY, "Accept */*")):
        checks.append(Check(
            f"{name} answers in the default Accept {contract.default_accept}", ("S9", "S12"),
            example.replace(accept=accept),
            (Status(200), ContentType(contract.default_accept), SameValuesAs(example)),
        ))
    for accept in contract.accept:
        checks.append(Check(
            f"Accept {accept} answers {accept} with the same values", ("S12", "S22"),
            example.replace(accept=accept),
            (Status(200), ContentType(accept), Decodes(), SameValuesAs(example)),
        ))
    for content_type, status in contract.reject_content_types.items():
        checks.append(Check(
            f"Content-Type {content_type} is refused with {status}", _error_rules(status),
            example.replace(content_type=content_type), (Status(status), ErrorBody()),
        ))
    if contract.reject_missing_content_type is not None:
        status = contract.reject_missing_content_type
        checks.append(Check(
            f"no Content-Type is refused with {status}", _error_rules(status, "S8"),
            example.replace(content_type=None), (Status(status), ErrorBody()),
        ))
    for accept, status in contract.reject_accepts.items():
        checks.append(Check(
            f"Accept {accept} is refused with {status}", _error_rules(status, "S22"),
            example.replace(accept=accept), (Status(status), ErrorBody()),
        ))
    if is_json(example.content_type):
        # Leading whitespace keeps JSON valid: the same request, padded to the limit.
        padded = b" " * (MAX_BODY_BYTES - len(example.body)) + example.body
        checks.append(Check(
            "a body of exactly 6 MiB is served", ("S4",), example.replace(body=padded),
            (Status(200), SameValuesAs(example)),
        ))
    else:
        checks.append(Check(
            "a body of exactly 6 MiB is not refused as too large", ("S4",),
            example.replace(body=b"\0" * MAX_BODY_BYTES), (NotStatus(413),),
        ))
    return checks


def case_check(case: Case) -> Check:
    expect = case.expect
    expectations: list[Expectation] = [Status(expect.status)]
    if expect.content_type is not None:
        expectations.append(ContentType(expect.content_type))
    expectations.extend(Header(name, value) for name, value in expect.headers.items())
    if expect.shape is not None:
        expectations.append(Shape(expect.shape))
    if expect.predicted_class is not None:
        expectations.append(PredictedClass(expect.predicted_class))
    expectations.extend(JsonPath(path, value) for path, value in expect.json_path.items())
    if expect.body_contains is not None:
        expectations.append(BodyContains(expect.body_contains))
    if expect.status >= 400 and expect.body_contains is None:
        expectations.append(ErrorBody())
    return Check(case.name, case.rules, case.request, tuple(expectations))


def build_checks(contract: Contract) -> list[Check]:
    """Every check of `contract`, in the order they run."""
    checks = [Check("GET /ping answers 200", ("S2",), None, (Status(200),))]
    if contract.request is not None:
        checks.extend(example_checks(contract, contract.request))
    example = contract.request or Request(content_type="application/json")
    # A request the handler would serve but for its size, so a server without the limit
    # answers 200 rather than failing on the body.
    over = b" " * (MAX_BODY_BYTES + 1 - len(example.body)) + example.body
    checks.append(Check(
        "a body of 6 MiB + 1 byte is refused with 413", ("S4",), example.replace(body=over),
        (Status(413),),
    ))
    checks.extend(case_check(case) for case in contract.cases)
    return checks


def run_checks(target: Target, checks: Iterable[Check]) -> list[CheckResult]:
    probe = Probe(target)
    return [check.run(probe) for check in checks]


def run_suite(target: Target, contract: Contract, *, target_name: str | None = None) -> Report:
    """Run every check of `contract` against `target`. Raises TargetUnreachable when nothing
    answers; every other problem is a failed check in the report."""
    started = time.perf_counter()
    results = run_checks(target, build_checks(contract))
    return Report(target=target_name or repr(target), contract=contract.source,
                  results=tuple(results), seconds=time.perf_counter() - started)
