"""`smlocal local-mode` drives SDK 2.x: with 3.x installed, its SDK steps say which SDK they
need in one line and exit 2 (issue 12); the steps that need no SDK still work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sdk(3)


def smlocal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("step", [["fit"], ["deploy", "--model-data", "model.tar.gz"]])
def test_L1_local_mode_says_it_needs_sdk_2x(step: list[str], tmp_path: Path) -> None:
    result = smlocal("local-mode", *step, "--root", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smlocal local-mode: error: this needs sagemaker 2.x but 3.")
    assert "smlocal[harness]" in lines[0]
    assert list(tmp_path.iterdir()) == [], "nothing was started"


def test_L1_local_mode_predict_needs_no_sdk(tmp_path: Path) -> None:
    # No endpoint here: the usual one-line answer of predict, not the SDK line's.
    result = smlocal("local-mode", "predict", "a sentence", "--port", "9",
                     "--root", str(tmp_path))
    assert "sagemaker 2.x" not in result.stderr
