"""The side-by-side serving benchmark runs end to end on tiny settings (in-process and the host
server; no Docker, no AWS stack), and its ratios are those issue 13 sets targets for. No timing
is asserted."""

from __future__ import annotations

import json

import pytest

from harness.benchmarks import serving


def server_figures(c1_p50: float, c16_rps: float, pss: float) -> dict[str, object]:
    return {"c1": {"rps": 1.0, "p50_ms": c1_p50, "p99_ms": c1_p50},
            "c4": {"rps": 1.0, "p50_ms": 1.0, "p99_ms": 1.0},
            "c16": {"rps": c16_rps, "p50_ms": 1.0, "p99_ms": 1.0},
            "rss_mb": pss * 2, "pss_mb": pss, "start_s": 1.0, "errors": 0, "rounds": 1,
            "processes": 1}


def test_ratios_against_the_targets_of_issue_13():
    summary = {
        "in_process": {
            "in-process, 1 sentence per call": {"p50_ms": 16.0, "sentences_per_s": 60.0},
            "in-process, 16 sentences per call": {"p50_ms": 70.0, "sentences_per_s": 200.0},
        },
        "servers": {"smlocal defaults": server_figures(18.0, 100.0, 550.0),
                    "smlocal best": server_figures(16.5, 180.0, 700.0),
                    "AWS best": server_figures(21.0, 100.0, 900.0)},
    }
    found = {ratio["figure"]: (round(ratio["value"], 3), ratio["met"])
             for ratio in serving.ratios(summary)}
    assert found == {
        "smlocal defaults, c16 req/s / in-process batched sentences/s": (0.5, False),
        "smlocal defaults, c16 req/s / AWS best c16 req/s": (1.0, False),
        "smlocal defaults, c1 p50 - in-process single call p50": (2.0, False),
        "smlocal best, c16 req/s / in-process batched sentences/s": (0.9, True),
        "smlocal best, c16 req/s / AWS best c16 req/s": (1.8, True),
        "smlocal best, c1 p50 - in-process single call p50": (0.5, True),
        "smlocal defaults, PSS of the server's processes": (550.0, True),
    }


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end_on_tiny_settings(bert_model_dir, handler_sources,
                                                       tmp_path, capsys):
    out = tmp_path / "serving"
    code = serving.main(["--model-dir", str(bert_model_dir), "--code",
                         str(handler_sources.handlers), "--out", str(out), "--server", "host",
                         "--reference", "none", "--rounds", "1", "--requests", "6",
                         "--calls", "4"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    markdown = (out / "serving.md").read_text()
    for row in ("| in-process, 1 sentence per call |", "| in-process, 16 sentences per call |",
                "| smlocal defaults |", "| smlocal best |",
                "| smlocal best, c16 req/s / in-process batched sentences/s |"):
        assert row in markdown
    assert markdown in printed
    assert (out / "serving.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    figures = json.loads((out / "serving.json").read_text())
    assert set(figures["summary"]["servers"]) == {"smlocal defaults", "smlocal best"}
    for name, server in figures["summary"]["servers"].items():
        assert server["errors"] == 0, name
        assert server["start_s"] > 0 and server["rss_mb"] > 0
        assert all(server[f"c{level}"]["rps"] > 0 for level in (1, 4, 16))
    rounds = figures["server_rounds"]
    assert [r["levels"]["16"]["outcomes"] for r in rounds] == [{"200": 6}, {"200": 6}]


def test_a_missing_model_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        serving.main(["--model-dir", str(tmp_path), "--out", str(tmp_path / "out"),
                      "--reference", "none", "--server", "host"])
    assert exit_info.value.code == 2
    assert "holds no trained model" in capsys.readouterr().err
