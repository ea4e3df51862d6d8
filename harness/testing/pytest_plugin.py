"""The contract suite as pytest tests: one test per check, ids carrying the rule ids.

    # conftest.py
    pytest_plugins = ["harness.testing.pytest_plugin"]

    # test_contract.py
    def test_contract(contract_target, contract_check):
        contract_check.verify(contract_target)

    pytest --contract-target asgi --contract-model-dir model --contract-code handlers \\
           --contract-cases handlers/contract.yaml

The options have ini equivalents (`contract_target`, `contract_cases`, `contract_model_dir`,
`contract_code`, paths relative to the ini file); `@pytest.mark.contract(cases="file.yaml")` picks
the case file of one module or test (relative to the test file). Override the session fixture
`contract_target` to build the target from your own fixtures (any object with ping/invoke).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.testing.contract import Contract, ContractFileError, load_contract
from harness.testing.suite import build_checks
from harness.testing.target import Target
from harness.testing.targets import SPEC_HELP, TargetSpecError, open_target

OPTIONS = {
    "contract_target": f"contract target: {SPEC_HELP} (default asgi)",
    "contract_cases": "contract file (YAML/JSON) with the example request and cases",
    "contract_model_dir": "model directory for the asgi target",
    "contract_code": "handler directory for the asgi target (default MODEL_DIR/code)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contract", "SageMaker serving contract (smlocal)")
    for name, help_text in OPTIONS.items():
        group.addoption("--" + name.replace("_", "-"), dest=name, default=None, help=help_text)
        parser.addini(name, help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "contract(cases): the contract file for the contract_check tests here"
    )


def _setting(config: pytest.Config, name: str) -> Path | str | None:
    """An option (relative to the working directory) or its ini value (relative to the ini)."""
    value = config.getoption(name)
    if value:
        return str(value)
    ini_value = config.getini(name)
    if not ini_value:
        return None
    if name == "contract_target":
        return str(ini_value)
    base = config.inipath.parent if config.inipath else config.rootpath
    return base / str(ini_value)


def _contract_path(metafunc: pytest.Metafunc) -> Path | None:
    marker = metafunc.definition.get_closest_marker("contract")
    if marker is not None:
        cases = marker.kwargs.get("cases", marker.args[0] if marker.args else None)
        if cases is None:
            raise pytest.UsageError("@pytest.mark.contract needs cases=PATH")
        return Path(metafunc.definition.path).parent / str(cases)
    setting = _setting(metafunc.config, "contract_cases")
    return None if setting is None else Path(setting)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "contract_check" not in metafunc.fixturenames:
        return
    path = _contract_path(metafunc)
    try:
        contract = Contract() if path is None else load_contract(path)
    except ContractFileError as exc:
        pytest.fail(str(exc), pytrace=False)
    checks = build_checks(contract)
    metafunc.parametrize("contract_check", checks, ids=[check.id for check in checks])


@pytest.fixture(scope="session")
def contract_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    """The target the options name, open for the whole session."""
    spec = _setting(pytestconfig, "contract_target") or "asgi"
    model_dir = _setting(pytestconfig, "contract_model_dir")
    code_dir = _setting(pytestconfig, "contract_code")
    try:
        target = open_target(
            str(spec),
            model_dir=Path(model_dir) if model_dir else None,
            code_dir=Path(code_dir) if code_dir else None,
        )
    except TargetSpecError as exc:
        raise pytest.UsageError(f"contract_target: {exc}") from exc
    try:
        yield target
    finally:
        target.close()
