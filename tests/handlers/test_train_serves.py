"""`handlers/train.py` is also a serving module (issue 11 item 5): the blog deploys the training
estimator, so `estimator.deploy()` serves with SAGEMAKER_PROGRAM=train.py. It re-exports
inference.py's handlers, and importing it does no training work (S14)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"
SENTENCES = ["Somebody just left - guess who.", "Gave to book the Mary John."]

IMPORT_PROBE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import inference
before = set(sys.modules)
started = time.perf_counter()
import train
seconds = time.perf_counter() - started
added = sorted({name.split(".")[0] for name in set(sys.modules) - before})
print(json.dumps({
    "added": added, "seconds": seconds,
    "same_handlers": all(getattr(train, n) is getattr(inference, n)
                         for n in ("model_fn", "input_fn", "predict_fn")),
}))
"""


def test_s14_importing_train_py_costs_no_more_than_inference_py(tmp_path: Path) -> None:
    """As the serving runtime imports it: no arguments, no SM_* variables, nothing trained or
    written; beyond what inference.py imports, only the standard library."""
    result = subprocess.run([sys.executable, "-c", IMPORT_PROBE, str(HANDLERS)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False,
                            env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["same_handlers"]
    assert set(probe["added"]) - {"train"} <= set(sys.stdlib_module_names), probe["added"]
    assert probe["seconds"] < 1.0, probe  # stdlib only: milliseconds, not torch's seconds
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.anyio
async def test_s14_the_serving_runtime_serves_with_sagemaker_program_train_py(
        bert_model_dir: Path, serving_client) -> None:
    """The same answers as with inference.py, which it re-exports."""
    answers = {}
    for program in ("train.py", "inference.py"):
        async with serving_client(bert_model_dir, HANDLERS,
                                  {"SAGEMAKER_PROGRAM": program}) as client:
            ping = await client.get("/ping")
            assert ping.status_code == 200
            reply = await client.post("/invocations", json=SENTENCES)
            assert reply.status_code == 200, reply.text
            answers[program] = reply.json()
            bad = await client.post("/invocations", content=b"{not json",
                                    headers={"Content-Type": "application/json"})
            assert bad.status_code == 400, bad.text  # inference.py's RequestError, via train.py
    assert len(answers["train.py"]) == len(SENTENCES)
    assert answers["train.py"] == answers["inference.py"]
