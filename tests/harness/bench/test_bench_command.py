"""`smlocal bench` end to end: a real loopback server and the in-process app, the printed table,
bench.json and bench.png; exit 2 with one line when it cannot run."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from harness.bench.loopback import LoopbackServer
from harness.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def loopback_url():
    with LoopbackServer() as server:
        yield server.url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_sweep_prints_each_level_and_writes_the_figures_and_the_chart(loopback_url, tmp_path,
                                                                         capsys):
    code = main(["bench", "--target", loopback_url, "--concurrency", "1,4", "--requests", "40",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].startswith(f"smlocal bench: {loopback_url}; 40 requests per level")
    assert "concurrency   1: 40 requests in" in out
    assert "concurrency   4: 40 requests in" in out
    header = next(line for line in out.splitlines() if line.endswith("errors by status"))
    assert header.split() == ["concurrency", "requests", "req/s", "p50", "ms", "p90", "ms", "p99",
                              "ms", "errors", "by", "status"]
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["target"] == loopback_url
    assert figures["settings"]["concurrency"] == [1, 4]
    assert figures["settings"]["body"] == "Somebody just left - guess who."
    assert [level["concurrency"] for level in figures["levels"]] == [1, 4]
    for level in figures["levels"]:
        assert level["requests"] == 40
        assert level["outcomes"] == {"200": 40}
        assert level["errors"] == {}
        latency = level["latency_ms"]
        assert latency["count"] == 40
        assert 0 < latency["minimum"] <= latency["p50"] <= latency["p90"] <= latency["p99"]
        assert latency["p99"] <= latency["maximum"]
        assert level["throughput_rps"] > 0
        assert level["client_cpu_ms_per_request"] > 0
    assert (tmp_path / "bench.png").read_bytes().startswith(PNG_MAGIC)


def test_a_duration_bounds_each_level_instead_of_a_count(loopback_url, tmp_path, capsys):
    assert main(["bench", "--target", loopback_url, "--concurrency", "2", "--duration", "0.5",
                 "--out", str(tmp_path)]) == 0
    level = json.loads((tmp_path / "bench.json").read_text())["levels"][0]
    assert level["requests"] > 0
    assert 0.5 <= level["wall_s"] < 5


def test_errors_are_counted_by_status_in_process(tiny_model, tmp_path, capsys):
    """The asgi target with the tiny handler: text/plain is refused with 415 by the handler."""
    model = tiny_model()
    code = main(["bench", "--target", "asgi", "--model-dir", str(model), "--body", "2.0",
                 "--content-type", "text/plain", "--concurrency", "1,3", "--requests", "12",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "415: 12" in out
    levels = json.loads((tmp_path / "bench.json").read_text())["levels"]
    assert [level["outcomes"] for level in levels] == [{"415": 12}, {"415": 12}]
    assert [level["latency_ms"] for level in levels] == [None, None]


def test_the_in_process_app_serves_the_sweep(tiny_model, tmp_path, capsys):
    model = tiny_model()
    assert main(["bench", "--target", "asgi", "--model-dir", str(model), "--body", "[1.0, 2.0]",
                 "--concurrency", "1,4", "--requests", "20", "--out", str(tmp_path)]) == 0
    levels = json.loads((tmp_path / "bench.json").read_text())["levels"]
    assert [level["outcomes"] for level in levels] == [{"200": 20}, {"200": 20}]
    assert capsys.readouterr().out.splitlines()[0].startswith("smlocal bench: asgi (model ")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--concurrency", "0"], "--concurrency 0: each level must be 1..256"),
        (["--concurrency", "1,x"], "--concurrency '1,x': 'x' is not an integer (e.g. 1,4,16)"),
        (["--concurrency", "4,4"], "--concurrency '4,4': 4 is given twice"),
        (["--concurrency", "1000"], "--concurrency 1000: each level must be 1..256"),
        (["--requests", "0"], "requests must be 1..100000, not 0"),
        (["--duration", "601"], "duration must be in (0, 600] s, not 601"),
        (["--warmup", "-1"], "--warmup must be 0..100000, not -1"),
        (["-e", "SAGEMAKER_TS_BATCH_SIZE=8"], "-e/--env sets the in-process server's settings: "
         "only with --target asgi (a container or an endpoint has its own)"),
        (["--sentences", "/nonexistent/sentences.txt"],
         "sentence file /nonexistent/sentences.txt does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(loopback_url, tmp_path, capsys, arguments, message):
    code = main(["bench", "--target", loopback_url, "--out", str(tmp_path), *arguments])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip() == f"smlocal bench: error: {message}"
    assert captured.out == ""


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ftp://example", "unknown target 'ftp://example'; use asgi, http://HOST:PORT or "
                          "endpoint:NAME"),
        ("asgi", "the asgi target needs a model directory (--model-dir)"),
    ],
)
def test_unusable_targets_exit_2_with_one_line(target, message, tmp_path, capsys):
    assert main(["bench", "--target", target, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"smlocal bench: error: {message}"


def test_an_unreachable_target_exits_2_with_one_line(tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    assert main(["bench", "--target", url, "--wait", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"smlocal bench: error: {url} is unreachable: cannot connect to ")
    assert not (tmp_path / "bench.json").exists()


def test_a_model_that_fails_to_load_exits_2(tiny_model, tmp_path, capsys):
    model = tiny_model(replace={"with open(": "raise RuntimeError('no weights')\n    with open("})
    assert main(["bench", "--target", "asgi", "--model-dir", str(model),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smlocal bench: error: the model failed to load: RuntimeError: no "
                          "weights"), err


def test_sentences_are_sent_one_per_request_in_order(tmp_path: Path):
    from harness.bench.workload import read_sentences, sentence_requests

    path = tmp_path / "sentences.txt"
    path.write_text("John gave Mary a book.\n\n  Sat mat the on cat the.  \n", encoding="utf-8")
    requests = sentence_requests(read_sentences(path))
    assert [request.body for request in requests] == [b'"John gave Mary a book."',
                                                      b'"Sat mat the on cat the."']


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_both_http_clients_run_the_sweep(loopback_url, tmp_path, capsys, client):
    assert main(["bench", "--target", loopback_url, "--client", client, "--concurrency", "1,8",
                 "--requests", "30", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["settings"]["client"] == client
    assert [level["outcomes"] for level in figures["levels"]] == [{"200": 30}, {"200": 30}]
