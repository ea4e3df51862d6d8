"""Which SageMaker SDK line is installed, read from the distribution's metadata (importing the
SDK takes seconds and, on 3.x, builds AWS clients)."""

from __future__ import annotations

import importlib.metadata


def installed_sagemaker() -> str | None:
    """The installed `sagemaker` version, or None."""
    try:
        return importlib.metadata.version("sagemaker")
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_major() -> int | None:
    version = installed_sagemaker()
    if version is None:
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def sdk_line_problem(needed: int) -> str | None:
    """One line saying why the installed SDK is not the `needed` major line, or None if it is."""
    version = installed_sagemaker()
    extra, venv = ("smlocal[harness]", ".venv") if needed == 2 else ("smlocal[sdk3]", ".venv-sdk3")
    if version is None:
        return f"the SageMaker SDK is not installed; this needs sagemaker {needed}.x " \
               f"(pip install '{extra}', or use {venv})"
    if installed_major() != needed:
        return (f"this needs sagemaker {needed}.x but {version} is installed "
                f"(pip install '{extra}', or use {venv})")
    return None
