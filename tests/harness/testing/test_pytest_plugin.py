"""harness.testing.pytest_plugin: a user's project runs the suite as pytest tests."""

from __future__ import annotations

import textwrap

import pytest

# pytester's in-process runs restore sys.modules afterwards; what the plugin and the serving
# runtime import (numpy, torch) cannot be imported twice in one process, so import it here first.
import container.serving.app
import container.serving.defaults  # noqa: F401
import harness.testing.pytest_plugin  # noqa: F401

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

USER_TEST = """
    def test_contract(contract_target, contract_check):
        contract_check.verify(contract_target)
"""


@pytest.fixture
def project(pytester, tiny_model, tools):
    """A user's project: conftest listing the plugin, one test, the tiny handler and contract."""
    model = tiny_model()
    pytester.makeconftest('pytest_plugins = ["harness.testing.pytest_plugin"]')
    pytester.makepyfile(test_contract=textwrap.dedent(USER_TEST))
    (pytester.path / "contract.yaml").write_text(textwrap.dedent(tools.tiny_contract))
    return model


def test_one_test_per_check_with_rule_ids_in_the_test_ids(pytester, project):
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-v", "--contract-target", "asgi",
        "--contract-model-dir", str(project), "--contract-cases", "contract.yaml",
    )
    result.assert_outcomes(passed=15)
    result.stdout.fnmatch_lines([
        "*test_contract?S2-get-ping-answers-200? PASSED*",
        "*test_contract?S4-a-body-of-6-mib-1-byte-is-refused-with-413? PASSED*",
        "*test_contract?case-negative-values-are-class-1? PASSED*",
    ])


def test_a_broken_handler_fails_the_right_tests_with_expected_and_actual(pytester, project):
    inference = project / "code" / "inference.py"
    inference.write_text(inference.read_text().replace("raise RequestError(415, ",
                                                       "raise ValueError("))
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--contract-model-dir", str(project),
        "--contract-cases", "contract.yaml",
    )
    result.assert_outcomes(passed=13, failed=2)
    result.stdout.fnmatch_lines([
        "*AssertionError: S24 Content-Type text/plain is refused with 415",
        "*expected: status 415",
        "*actual:   status 500: unsupported content type 'text/plain'*",
    ])


def test_ini_settings_and_the_contract_marker(pytester, project, tools):
    pytester.makeini(f"""
        [pytest]
        contract_model_dir = {project}
        contract_cases = missing.yaml
    """)
    (pytester.path / "other.yaml").write_text("request: {json: 1.0}\n")
    pytester.makepyfile(test_marked=textwrap.dedent("""
        import pytest

        @pytest.mark.contract(cases="other.yaml")
        def test_marked(contract_target, contract_check):
            contract_check.verify(contract_target)
    """))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "test_marked.py")
    # request only: ping, example, two default-Accept checks, two S4 checks.
    result.assert_outcomes(passed=6)
    missing = pytester.runpytest_inprocess("-p", "no:cacheprovider", "test_contract.py")
    missing.stdout.fnmatch_lines(["*cannot read *missing.yaml*"])
    assert missing.ret != 0
