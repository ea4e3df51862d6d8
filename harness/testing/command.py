"""`smlocal contract`: open a target, run the suite, print the report; 0 if every check passed,
1 if any failed, 2 when the target or the contract file cannot be used."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness.testing.asgi import AsgiTarget
from harness.testing.contract import Contract, ContractFileError, load_contract
from harness.testing.suite import run_suite
from harness.testing.target import Target, TargetError, TargetUnreachable
from harness.testing.targets import TargetSpecError, open_target

EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_CASES = Path("handlers") / "contract.yaml"
CASES_NAME = "contract.yaml"
SERVER_LOGGER = "smlocal.serve"


class ContractUsageError(Exception):
    """The contract cannot run at all (exit 2): the target or the case file is unusable."""


DEFAULT_WAIT_S = 30.0
# Two containers loading a model on a shared machine: TorchServe's JVM and workers included.
DEFAULT_COMPARE_WAIT_S = 240.0


@dataclass(frozen=True)
class ContractOptions:
    target: str | None  # None with compare
    cases: Path | None = None
    model_dir: Path | None = None
    code_dir: Path | None = None
    wait_s: float | None = None
    install_requirements: bool = True
    region: str | None = None
    verbose: bool = False
    compare: bool = False
    image: str = "smlocal:latest"
    reference_image: str = "smlocal-reference:latest"
    env: tuple[str, ...] = ()


def default_cases(options: ContractOptions) -> Path | None:
    """CODE/contract.yaml (the asgi code directory, or --code), else ./handlers/contract.yaml."""
    code_dir = options.code_dir
    if code_dir is None and (options.target == "asgi" or options.compare) \
            and options.model_dir is not None:
        code_dir = options.model_dir / "code"
    for candidate in ((code_dir / CASES_NAME) if code_dir else None, DEFAULT_CASES):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def read_contract(path: Path | None) -> Contract:
    if path is None:
        return Contract()
    try:
        return load_contract(path)
    except ContractFileError as exc:
        raise ContractUsageError(str(exc)) from exc


def wait_until_healthy(target: Target, wait_s: float, err: TextIO | None = None) -> None:
    """Poll /ping until 200 or `wait_s` passed (a container may still be starting or loading).
    Raises the last TargetError if nothing ever answered; an unhealthy answer is left to the
    S2 check."""
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        try:
            if target.ping().status == 200:
                return
            problem: TargetError | None = None
        except TargetError as exc:  # refused, or reset while the server starts
            problem = exc
        if time.monotonic() >= deadline:
            if problem is not None:
                raise problem
            return
        if err is not None and not announced:
            print(f"waiting up to {wait_s:g} s for /ping to answer 200 ...", file=err)
            announced = True
        time.sleep(0.5)


@contextmanager
def captured_server_log(verbose: bool) -> Iterator[list[logging.LogRecord]]:
    """The in-process server's log, kept back unless verbose: the suite provokes errors on
    purpose and each would print a traceback."""
    logger = logging.getLogger(SERVER_LOGGER)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else Keep()
    previous = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.ERROR)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ContractUsageError(f"--env {pair!r}: expected KEY=VALUE")
        settings[key] = value
    return settings


def run_comparison(options: ContractOptions, contract: Contract, out: TextIO,
                   err: TextIO) -> int:
    """--compare: both images on the model and handlers (harness.testing.compare)."""
    from harness.testing.compare import CompareOptions, run_compare

    if options.model_dir is None:
        raise ContractUsageError("--compare needs --model-dir (and --code unless the model "
                                 "directory has code/)")
    if not options.model_dir.is_dir():
        raise ContractUsageError(f"model directory {options.model_dir} does not exist")
    if options.code_dir is not None and not options.code_dir.is_dir():
        raise ContractUsageError(f"code directory {options.code_dir} does not exist")
    compare_options = CompareOptions(
        model_dir=options.model_dir, code_dir=options.code_dir, cases=options.cases,
        image=options.image, reference_image=options.reference_image,
        env=parse_env(options.env),
        wait_s=options.wait_s if options.wait_s is not None else DEFAULT_COMPARE_WAIT_S,
    )
    try:
        return run_compare(compare_options, contract, out, err)
    except TargetUnreachable as exc:
        raise ContractUsageError(f"a container stopped answering: {exc}") from exc


def run_contract(options: ContractOptions, out: TextIO, err: TextIO) -> int:
    cases = options.cases if options.cases is not None else default_cases(options)
    if options.cases is not None and not options.cases.is_file():
        raise ContractUsageError(f"contract file {options.cases} does not exist")
    contract = read_contract(cases)
    if cases is None:
        print(f"no contract file (--cases, CODE/{CASES_NAME} or {DEFAULT_CASES}): only the "
              "checks that need no example request run (S2, S4)", file=err)
    if options.compare or options.target is None:
        return run_comparison(options, contract, out, err)
    wait_s = options.wait_s if options.wait_s is not None else DEFAULT_WAIT_S
    with captured_server_log(options.verbose) as server_log:
        try:
            target = open_target(options.target, model_dir=options.model_dir,
                                 code_dir=options.code_dir,
                                 install_requirements=options.install_requirements,
                                 region=options.region)
        except TargetSpecError as exc:
            raise ContractUsageError(str(exc)) from exc
        except TargetError as exc:
            raise ContractUsageError(f"{options.target}: {exc}") from exc
        try:
            name = target.description if isinstance(target, AsgiTarget) else options.target
            try:
                if not isinstance(target, AsgiTarget):
                    wait_until_healthy(target, wait_s, err)
                report = run_suite(target, contract, target_name=name)
            except TargetUnreachable as exc:
                raise ContractUsageError(f"{options.target} is unreachable: {exc}") from exc
            except TargetError as exc:  # /ping never got an answer
                raise ContractUsageError(f"{options.target} does not answer: {exc}") from exc
            failure = target.load_failure if isinstance(target, AsgiTarget) else None
        finally:
            target.close()
    print(report.render(), file=out)
    if failure is not None:
        print(f"\nthe model failed to load: {failure}", file=err)
        for record in server_log:
            if record.levelno >= logging.ERROR:
                print(record.getMessage(), file=err)
    return 0 if report.passed else EXIT_FAILED
