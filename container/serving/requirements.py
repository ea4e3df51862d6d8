"""S15: pip-install the user's requirements.txt before the model loads; failing aborts loading."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

log = logging.getLogger("smlocal.serve")

# pip's own output can be long; the tail holds the error.
ERROR_TAIL_CHARS = 4000


class RequirementsError(RuntimeError):
    pass


def install_requirements(python: str, requirements_file: Path, timeout_s: float) -> None:
    """Run pip once; raise RequirementsError with pip's output on failure (never retried)."""
    if not requirements_file.is_file():
        return
    command = [
        python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
        "-r", str(requirements_file),
    ]
    log.info("installing %s: %s", requirements_file, " ".join(command))
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RequirementsError(
            f"pip install -r {requirements_file} did not finish within {timeout_s:g}s "
            "(SMLOCAL_REQUIREMENTS_TIMEOUT)"
        ) from exc
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise RequirementsError(
            f"pip install -r {requirements_file} failed with exit code {result.returncode}:\n"
            f"{output[-ERROR_TAIL_CHARS:]}"
        )
    log.info("requirements installed:\n%s", output[-ERROR_TAIL_CHARS:])
