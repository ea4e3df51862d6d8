"""The outcome of a contract run, and how it reads in a terminal."""

from __future__ import annotations

import re
from dataclasses import dataclass


def check_id(name: str, rules: tuple[str, ...]) -> str:
    """A stable identifier for test ids and lookups: `S12-S22-accept-text-csv-...`."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return "-".join((*rules, slug)) if rules else f"case-{slug}"


@dataclass(frozen=True)
class CheckResult:
    name: str
    rules: tuple[str, ...]
    passed: bool
    request: str = ""
    expected: str = ""
    actual: str = ""
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return check_id(self.name, self.rules)

    @property
    def rule_text(self) -> str:
        return " ".join(self.rules) or "case"

    def explain(self) -> str:
        """The failure in three lines: what was sent, expected, and got."""
        lines = [f"{self.rule_text} {self.name}"]
        if self.request:
            lines.append(f"request:  {self.request}")
        lines.append(f"expected: {self.expected}")
        lines.append(f"actual:   {self.actual}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Report:
    target: str
    contract: str
    results: tuple[CheckResult, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    def render(self) -> str:
        width = max((len(result.rule_text) for result in self.results), default=4)
        lines = [f"contract {self.contract}", f"target   {self.target}", ""]
        for result in self.results:
            mark = "PASS" if result.passed else "FAIL"
            lines.append(f"  {mark}  {result.rule_text:<{width}}  {result.name}")
            if not result.passed:
                indent = " " * (10 + width)
                if result.request:
                    lines.append(f"{indent}request:  {result.request}")
                lines.append(f"{indent}expected: {result.expected}")
                lines.append(f"{indent}actual:   {result.actual}")
        failed = len(self.failures)
        lines.append("")
        lines.append(
            f"{len(self.results)} checks: {len(self.results) - failed} passed, {failed} failed "
            f"({self.seconds:.2f} s)"
        )
        return "\n".join(lines)

    def assert_passed(self) -> None:
        if not self.passed:
            raise AssertionError("the contract does not hold:\n" + self.render())
