"""`smlocal package`: model.tar.gz in the layout the SageMaker SDK's repack produces (L5).

The model files sit at the top of the archive (SageMaker unpacks it into /opt/ml/model) and the
handler directory goes under `code/` (S14), replacing any `code/` the model directory had, as
the SDK does. Links are stored as the files they point to, so the archive holds no links.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from container.serving.settings import DEFAULT_PROGRAM

CODE_DIR = "code"
SKIPPED = ("__pycache__", ".ipynb_checkpoints")
SKIPPED_SUFFIXES = (".pyc",)


class PackageError(Exception):
    """The inputs cannot make an archive that serves; the message says what to change."""


@dataclass(frozen=True)
class Packaged:
    path: Path
    model_files: int
    code_files: int
    size_bytes: int


def entry_point_file(entry_point: str) -> str:
    """SAGEMAKER_PROGRAM as a file name: `inference` and `inference.py` are the same (S14)."""
    return entry_point if entry_point.endswith(".py") else entry_point + ".py"


def _walk(directory: Path, arcname: str, exclude: set[Path]) -> Iterator[tuple[Path, str]]:
    """(path, name in the archive) for every directory and file under `directory`, sorted."""
    for entry in sorted(directory.iterdir(), key=lambda path: path.name):
        if entry.name in SKIPPED or entry.suffix in SKIPPED_SUFFIXES:
            continue
        if entry.resolve() in exclude:
            continue
        name = f"{arcname}/{entry.name}" if arcname else entry.name
        if entry.is_dir():
            yield entry, name
            yield from _walk(entry, name, exclude)
        elif entry.is_file():
            yield entry, name
        elif entry.is_symlink():
            raise PackageError(f"{entry} is a link to {os.readlink(entry)}, which does not exist")
        else:
            raise PackageError(f"{entry} is neither a file nor a directory")


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def package_model(
    model_dir: Path, code_dir: Path, out: Path, entry_point: str = DEFAULT_PROGRAM
) -> Packaged:
    """Write `out` (gzip-compressed tar): model_dir's files at the top, code_dir as code/."""
    if not model_dir.is_dir():
        raise PackageError(f"model directory {model_dir} does not exist")
    if not code_dir.is_dir():
        raise PackageError(f"code directory {code_dir} does not exist")
    program = entry_point_file(entry_point)
    if not (code_dir / program).is_file():
        found = ", ".join(sorted(path.name for path in code_dir.glob("*.py"))) or "none"
        raise PackageError(
            f"{code_dir / program} does not exist: SageMaker imports SAGEMAKER_PROGRAM "
            f"({program}) from code/ (S14); .py files in {code_dir}: {found}"
        )
    out = out.resolve()
    exclude = {out, out.with_name(out.name + ".partial")}
    # The SDK's repack replaces a code/ already in the model directory with the source dir.
    model_entries = list(_walk(model_dir, "", exclude | {(model_dir / CODE_DIR).resolve()}))
    model_files = sum(1 for path, _ in model_entries if path.is_file())
    if model_files == 0:
        raise PackageError(f"{model_dir} holds no model files (besides code/)")
    code_entries = [(code_dir, CODE_DIR), *_walk(code_dir, CODE_DIR, exclude)]
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Level 6, as `tar -czf`: model weights barely compress, level 9 only costs time.
        with tarfile.open(partial, "w:gz", compresslevel=6, dereference=True) as archive:
            for path, name in [*model_entries, *code_entries]:
                archive.add(path, arcname=name, recursive=False, filter=_normalized)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return Packaged(
        path=out,
        model_files=model_files,
        code_files=sum(1 for path, _ in code_entries if path.is_file()),
        size_bytes=out.stat().st_size,
    )
