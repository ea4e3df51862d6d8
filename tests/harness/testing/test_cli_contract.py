"""`smlocal contract`: the report, and exit 0 (all pass), 1 (a check failed), 2 (cannot run)."""

from __future__ import annotations

import pytest

from harness.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_asgi_target_prints_the_report_and_exits_0(tiny_model, contract_file, capsys):
    model = tiny_model()
    code = main(["contract", "--target", "asgi", "--model-dir", str(model),
                 "--cases", str(contract_file())])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[:2] == [f"contract {contract_file()}",
                                    f"target   asgi (model {model}, code {model / 'code'})"]
    assert "  PASS  S2       GET /ping answers 200" in out
    assert "  PASS  S4       a body of 6 MiB + 1 byte is refused with 413" in out
    assert out.rstrip().splitlines()[-1].startswith("15 checks: 15 passed, 0 failed (")


def test_the_contract_file_next_to_the_handlers_is_the_default(tiny_model, tools, capsys):
    model = tiny_model()
    (model / "code" / "contract.yaml").write_text(tools.tiny_contract)
    assert main(["contract", "--target", "asgi", "--model-dir", str(model)]) == 0
    assert capsys.readouterr().out.startswith(f"contract {model / 'code' / 'contract.yaml'}\n")


def test_a_failed_check_exits_1_with_rule_expected_and_actual(tiny_model, contract_file, capsys):
    model = tiny_model(replace={"raise RequestError(415, ": "raise ValueError("})
    code = main(["contract", "--target", "asgi", "--model-dir", str(model),
                 "--cases", str(contract_file())])
    out = capsys.readouterr().out
    assert code == 1
    failure = out[out.index("  FAIL  S24      Content-Type text/plain is refused with 415"):]
    lines = failure.splitlines()[:4]
    assert lines[1].strip() == ("request:  POST /invocations '2.0', Content-Type text/plain, "
                                "no Accept")
    assert lines[2].strip() == "expected: status 415"
    assert lines[3].strip().startswith(
        "actual:   status 500: unsupported content type 'text/plain'; send JSON")
    assert "15 checks: 13 passed, 2 failed" in out


def test_a_model_that_fails_to_load_says_why(tiny_model, contract_file, capsys):
    model = tiny_model(replace={"with open(": "raise RuntimeError('no weights')\n    with open("})
    assert main(["contract", "--target", "asgi", "--model-dir", str(model),
                 "--cases", str(contract_file())]) == 1
    err = capsys.readouterr().err
    assert "the model failed to load: RuntimeError: no weights" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--target", "asgi"], "the asgi target needs a model directory (--model-dir)"),
        (["--target", "asgi", "--model-dir", "/nonexistent"],
         "model directory /nonexistent does not exist"),
        (["--target", "ftp://x"], "unknown target 'ftp://x'; use asgi, http://HOST:PORT or "
                                  "endpoint:NAME"),
        (["--target", "http://127.0.0.1:8080/invocations"],
         "'http://127.0.0.1:8080/invocations': give the container's base address, e.g. "
         "http://127.0.0.1:8080"),
        (["--target", "endpoint:"], "endpoint: needs the endpoint's name, e.g. endpoint:cola-bert"),
        (["--target", "asgi", "--cases", "/nonexistent.yaml"],
         "contract file /nonexistent.yaml does not exist"),
    ],
)
def test_usage_errors_exit_2_with_one_line(arguments, message, capsys):
    assert main(["contract", *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"smlocal contract: error: {message}"


def test_a_broken_contract_file_exits_2(tiny_model, contract_file, capsys):
    cases = contract_file("cases: [{name: a, expect: {stauts: 1}}]")
    assert main(["contract", "--target", "asgi", "--model-dir", str(tiny_model()),
                 "--cases", str(cases)]) == 2
    assert "cases[0].expect: unknown key 'stauts'" in capsys.readouterr().err


def test_an_unreachable_container_exits_2_with_one_line(tools, contract_file, capsys):
    port = tools.free_port()
    assert main(["contract", "--target", f"http://127.0.0.1:{port}", "--wait", "0",
                 "--cases", str(contract_file())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"smlocal contract: error: http://127.0.0.1:{port} is unreachable: "
                             f"cannot connect to http://127.0.0.1:{port}/ping")


def test_http_target_passes_against_a_served_model(tiny_model, contract_file, tools, capsys):
    with tools.serving_over_http(tiny_model()) as url:
        assert main(["contract", "--target", url, "--cases", str(contract_file())]) == 0
    out = capsys.readouterr().out
    assert f"target   {url}" in out


def test_endpoint_target_through_the_runtime_api(tiny_model, contract_file, tools, aws_env,
                                                 capsys):
    with tools.serving_over_http(tiny_model()) as url, \
            tools.serve_in_thread(tools.runtime_api({"tiny": url}), lifespan="off") as api:
        aws_env(api)
        assert main(["contract", "--target", "endpoint:tiny",
                     "--cases", str(contract_file())]) == 0
        assert main(["contract", "--target", "endpoint:missing", "--wait", "0",
                     "--cases", str(contract_file())]) == 2
    captured = capsys.readouterr()
    assert "15 checks: 15 passed, 0 failed" in captured.out
    assert captured.err.strip().splitlines()[-1].startswith(
        "smlocal contract: error: endpoint:missing is unreachable: endpoint missing does not "
        "exist")
