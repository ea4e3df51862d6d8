"""Contract tests for SageMaker serving handlers: one suite, any target.

    from harness.testing import AsgiTarget, load_contract, run_suite

    with AsgiTarget.serving(model_dir, code_dir) as target:
        report = run_suite(target, load_contract(Path("handlers/contract.yaml")))
    print(report.render())
    report.assert_passed()

Targets: AsgiTarget (the serving app in this process), HttpTarget (a container at
http://HOST:PORT), EndpointTarget (a real SageMaker endpoint through boto3). For pytest, list
`harness.testing.pytest_plugin` in `pytest_plugins`.
"""

from harness.testing.asgi import AsgiTarget
from harness.testing.contract import (
    Case,
    Contract,
    ContractFileError,
    Expect,
    Request,
    load_contract,
)
from harness.testing.endpoint import EndpointTarget
from harness.testing.http import HttpTarget
from harness.testing.report import CheckResult, Report
from harness.testing.suite import Check, build_checks, run_suite
from harness.testing.target import Reply, Target, TargetError, TargetUnreachable
from harness.testing.targets import TargetSpecError, open_target

__all__ = [
    "AsgiTarget",
    "Case",
    "Check",
    "CheckResult",
    "Contract",
    "ContractFileError",
    "EndpointTarget",
    "Expect",
    "HttpTarget",
    "Reply",
    "Report",
    "Request",
    "Target",
    "TargetError",
    "TargetSpecError",
    "TargetUnreachable",
    "build_checks",
    "load_contract",
    "open_target",
    "run_suite",
]
