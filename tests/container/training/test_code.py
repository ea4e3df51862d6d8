"""Putting the code in place: requirements that are already installed skip pip (T9)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from container.training.code import install_requirements


def test_T9_satisfied_requirements_skip_pip(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "requirements.txt").write_text("packaging\n")
    with caplog.at_level(logging.INFO, logger="smlocal.train"):
        install_requirements(sys.executable, tmp_path)
    assert "already installed" in caplog.text


def test_T11_an_unsatisfied_requirement_still_goes_to_pip(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    from container.training.process import ProcessError

    (tmp_path / "requirements.txt").write_text("--no-index\nsmlocal-no-such-package==9.9\n")
    with pytest.raises(ProcessError, match="InstallRequirementsError"):
        install_requirements(sys.executable, tmp_path)
