"""The soak script end to end on a two hundred requests against `smlocal serve` with the
project's handlers: every request of the mix gets its expected status, and the figures come out.
No timing is asserted (performance is the benchmark's business, not a test's)."""

from __future__ import annotations

import json

import pytest

from harness.benchmarks import soak

pytestmark = pytest.mark.slow


def test_S4_S23_S24_the_mix_has_every_kind_of_bad_request_with_its_status():
    mix = soak.request_mix()
    assert len(mix) == 100
    statuses = {request.label: request.expected_status for request in mix}
    assert statuses == {"good: one sentence": 200, "good: two sentences": 200,
                        "malformed JSON": 400, "wrong Content-Type": 415,
                        "unsupported Accept": 500, "empty body": 400, "6 MiB + 1 byte": 413}
    oversized = next(request for request in mix if request.expected_status == 413)
    assert len(oversized.body) == 6 * 1024 * 1024 + 1


def test_S4_S23_S24_a_short_soak_against_the_host_server(bert_model_dir, handler_sources,
                                                        tmp_path, capsys):
    figures_file = tmp_path / "soak.json"
    code = soak.main(["--server", "host", "--model-dir", str(bert_model_dir),
                      "--code", str(handler_sources.handlers), "--requests", "200",
                      "--block", "100", "--concurrency", "4", "--json", str(figures_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "unexpected statuses: none" in out
    assert "RSS after warm-up " in out and "open files: " in out
    figures = json.loads(figures_file.read_text())
    assert figures["requests"] == 200
    assert len(figures["blocks"]) == 2
    # Two cycles of the seeded mix: every kind of request was sent and answered as expected.
    assert figures["outcomes"] == {"200": 160, "400": 18, "413": 2, "415": 10, "500": 10}
    assert all(block["server"]["rss_bytes"] > 0 for block in figures["blocks"])
    assert all(block["server"]["open_files"] > 0 for block in figures["blocks"])
    assert figures["p99_ms_first"] > 0 and figures["p99_ms_last"] > 0


def test_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        soak.main(["--model-dir", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "--model-dir" in capsys.readouterr().err


@pytest.mark.docker
def test_S4_S23_S24_a_short_soak_against_the_container(bert_model_dir, handler_sources,
                                                       tmp_path, capsys):
    """The default server: a container of the image, its whole process tree measured from the
    host, removed afterwards."""
    import subprocess

    from harness.cli import main

    assert main(["image", "build", "--tag", "smlocal:latest"]) == 0
    figures_file = tmp_path / "soak.json"
    code = soak.main(["--model-dir", str(bert_model_dir), "--code", str(handler_sources.handlers),
                      "--requests", "100", "--block", "50", "--concurrency", "4",
                      "--json", str(figures_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    figures = json.loads(figures_file.read_text())
    assert figures["server"] == "container"
    assert figures["outcomes"] == {"200": 80, "400": 9, "413": 1, "415": 5, "500": 5}
    assert all(block["server"]["rss_bytes"] > 0 for block in figures["blocks"])
    name = out.split("(", 1)[1].split(")", 1)[0]
    assert name.startswith("smlocal-soak-")
    listed = subprocess.run(["docker", "ps", "-a", "--filter", f"name={name}", "--format",
                             "{{.Names}}"], capture_output=True, text=True, check=True)
    assert listed.stdout.strip() == ""
