"""S15: pip-install the user's requirements.txt before the model loads; failing aborts loading.

pip itself takes seconds to start and resolve, even when it ends up installing nothing, which was
a third of the start-up time. So when every line is a plain requirement (a name, version
specifiers, markers) that an installed distribution already satisfies, pip is not run. Anything
pip alone understands (options, URLs, paths, editable installs) still goes to pip.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

log = logging.getLogger("smlocal.serve")

# pip's own output can be long; the tail holds the error.
ERROR_TAIL_CHARS = 4000


class RequirementsError(RuntimeError):
    pass


def _satisfied(line: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return False
    if requirement.url is not None:
        return False
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        return False
    # Extras would need their own dependencies checked: leave those to pip.
    return not requirement.extras and requirement.specifier.contains(installed, prereleases=True)


def already_satisfied(requirements_file: Path) -> bool:
    """Every requirement in the file is a plain one that the installed distributions meet."""
    try:
        text = requirements_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        lines = [line.split(" #", 1)[0].strip() for line in text.splitlines()]
        return all(_satisfied(line) for line in lines if line and not line.startswith("#"))
    except ImportError:  # no `packaging` in this environment: pip decides
        return False


def install_requirements(python: str, requirements_file: Path, timeout_s: float) -> None:
    """Run pip once; raise RequirementsError with pip's output on failure (never retried)."""
    if not requirements_file.is_file():
        return
    if already_satisfied(requirements_file):
        log.info("%s: every requirement is already installed; not running pip",
                 requirements_file)
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
