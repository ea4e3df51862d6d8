"""The contract suite against the smlocal image: `docker run IMAGE serve` on the project's
handlers passes the same suite as the app in-process (the `http://` target)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.testing import HttpTarget, load_contract, run_suite
from harness.testing.command import wait_until_healthy

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
# Statuses and shapes: true of any BERT classifier, trained or not.
CONTRACT = ROOT / "tests" / "harness" / "testing" / "cola_any_model.yaml"


def test_s2_s4_s8_s12_s22_s24_the_container_passes_the_suite(
    containers, tools, bert_model_dir, tmp_path, capsys
) -> None:
    # An unpacked model.tar.gz: the model at the top, the handlers under code/ (S14).
    model = tmp_path / "model"
    shutil.copytree(bert_model_dir, model)
    shutil.copytree(ROOT / "handlers", model / "code",
                    ignore=shutil.ignore_patterns("__pycache__", "train.py"))
    port = tools.free_port()
    name = containers.start("serve", options=[
        "-p", f"127.0.0.1:{port}:8080", "-v", f"{model}:/opt/ml/model:ro",
    ])
    url = f"http://127.0.0.1:{port}"
    with HttpTarget(url) as target:
        wait_until_healthy(target, 180)
        report = run_suite(target, load_contract(CONTRACT), target_name=url)
    assert report.passed, report.render() + "\n" + containers.logs(name)[-3000:]
    # The command line gives the same verdict.
    assert main(["contract", "--target", url, "--cases", str(CONTRACT), "--wait", "0"]) == 0
    assert "17 checks: 17 passed, 0 failed" in capsys.readouterr().out
