"""Putting the user's code in place and installing its requirements (T9)."""

from __future__ import annotations

import logging
import shutil
import sys
import tarfile
from pathlib import Path

from container.serving.requirements import already_satisfied
from container.training.config import ConfigError
from container.training.process import run_command
from container.training.s3 import S3Access, S3DownloadError, download

log = logging.getLogger("smlocal.train")


def _strip_file_scheme(location: str) -> str:
    return location[len("file://") :] if location.startswith("file://") else location


def _extract(archive: tarfile.TarFile, target: Path) -> None:
    """Unpack without letting a member escape `target`. The image's Python (Debian's 3.11.2)
    predates extraction filters (3.11.4), so the check is done here where they are missing."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(target, filter="data")
        return
    root = target.resolve()
    for member in archive.getmembers():
        destination = (target / member.name).resolve()
        if root not in (destination, *destination.parents) or member.issym() or member.islnk():
            raise ConfigError(f"the code archive's member {member.name} leaves {target}")
    archive.extractall(target)  # every member checked above


def prepare_code(submit_directory: str | None, code_dir: Path,
                 s3: S3Access | None = None) -> None:
    """Copy or unpack `sagemaker_submit_directory` into `code_dir`, unless it already holds code.

    In SageMaker local mode with local code, the source dir is mounted at /opt/ml/code and the
    submit directory names that very place, so there is nothing to do. An s3:// tarball (what
    the SDK uploads for a cloud job, C5) is downloaded first, as `s3` says.
    """
    if code_dir.is_dir() and any(code_dir.iterdir()):
        log.info("code already in %s", code_dir)
        return
    if not submit_directory:
        raise ConfigError(
            f"{code_dir} is empty and hyperparameter sagemaker_submit_directory is not set"
        )
    if submit_directory.startswith("s3://"):
        try:
            source = download(submit_directory, code_dir.parent / "sourcedir.tar.gz",
                              s3 or S3Access.from_environ({}))
        except S3DownloadError as exc:
            raise ConfigError(f"sagemaker_submit_directory: {exc}") from exc
    else:
        source = Path(_strip_file_scheme(submit_directory))
    code_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, code_dir, dirs_exist_ok=True)
    elif source.is_file() and tarfile.is_tarfile(source):
        with tarfile.open(source) as archive:
            _extract(archive, code_dir)
    else:
        raise ConfigError(
            f"sagemaker_submit_directory {submit_directory} is neither a directory nor a tarball"
        )
    log.info("code from %s put in %s", submit_directory, code_dir)


def install_requirements(python: str, code_dir: Path) -> None:
    """pip-install `requirements.txt` if the code has one; a failed install fails the job."""
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return
    # pip takes seconds to find nothing to do: skip it when this interpreter (the one that
    # runs the script) already satisfies every plain requirement, as serving does (S15).
    if python == sys.executable and already_satisfied(requirements):
        log.info("%s: every requirement is already installed", requirements)
        return
    log.info("installing %s", requirements)
    run_command(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt"],
        cwd=code_dir,
        env=None,
        error_name="InstallRequirementsError",
    )
