"""`smlocal image build --reference`: the AWS serving stack as an image, built offline.

The reference image runs what the AWS PyTorch inference images run for a SageMaker endpoint:
the SageMaker PyTorch inference toolkit starting TorchServe (Java 17), at the versions of those
images, on the same torch wheel as the smlocal image, with the packages the project's handlers
need. It is the second target of `smlocal contract --compare` and the anchor of the serving
benchmarks. Built like the smlocal image (harness/image.py), in three cached steps:
1. the base: `smlocal/reference-base:bookworm`, debootstrap's bookworm with Python 3.11 and
   openjdk-17-jre-headless (pip and apt cannot reach anything inside `docker build`);
2. the wheels: the stack resolved by pip on the host (its sdist built there), pinned to this
   environment's versions where it shares packages with it, plus the closure of torch and the
   handlers' requirements from the smlocal wheelhouse;
3. `docker build --network none` of container/reference/Dockerfile on a context assembled in
   .smlocal/reference/context (hard links, so the wheels are not copied).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.image import (
    ANSI_ESCAPE,
    DEBOOTSTRAP_PACKAGES,
    REQUIREMENTS,
    WHEELHOUSE,
    BuildResult,
    ImageError,
    Log,
    _build_lock,
    _docker,
    _stderr_log,
    _wheel_pins,
    image_id,
    image_size,
    make_offline_base,
    pinned_closure,
    prepare_wheelhouse,
    require_docker,
    requirements_text,
    runtime_dependencies,
    try_pull,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_TAG = "smlocal-reference:latest"
REFERENCE_BASE_IMAGE = "smlocal/reference-base:bookworm"
# TorchServe's frontend is Java; 17 is what the AWS images install (openjdk-17).
REFERENCE_BASE_PACKAGES = (*DEBOOTSTRAP_PACKAGES, "openjdk-17-jre-headless")
REFERENCE_DIR = Path("container") / "reference"
REFERENCE_DOCKERFILE = REFERENCE_DIR / "Dockerfile"
REFERENCE_ENTRYPOINT = REFERENCE_DIR / "entrypoint.py"
# The stack of the AWS PyTorch inference images (toolkit 2.0.25 with TorchServe 0.12.0). The
# toolkit imports pkg_resources, which setuptools 81 removed.
REFERENCE_STACK = (
    "sagemaker-pytorch-inference==2.0.25",
    "torchserve==0.12.0",
    "torch-model-archiver==0.12.0",
    "setuptools<81",
)
HANDLER_REQUIREMENTS = Path("handlers") / "requirements.txt"
STATE_DIR = Path(".smlocal") / "reference"
STACK_WHEELS = STATE_DIR / "wheels"
CONTEXT = STATE_DIR / "context"
# What the stack wheels were collected for; rewritten last, so it also marks a complete set.
STACK_STAMP = "request.txt"


def requirement_lines(path: Path) -> list[str]:
    """The requirements of a requirements.txt (comments, blanks and pip options left out)."""
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            raise ImageError(f"{path}: cannot read {line!r}: {exc}", 2) from exc
        lines.append(line)
    return lines


def handler_closure(root: Path) -> dict[str, str]:
    """torch and what the handlers' requirements.txt needs, pinned to this environment: the
    packages the toolkit's start-up `pip install -r code/requirements.txt` must find present."""
    torch_version = importlib.metadata.version("torch")
    return pinned_closure([f"torch=={torch_version}",
                           *requirement_lines(root / HANDLER_REQUIREMENTS)])


def _stack_request(stack: tuple[str, ...], constraints: dict[str, str]) -> str:
    return "".join(f"{line}\n" for line in stack) + "# constraints\n" + requirements_text(
        constraints)


def collect_stack_wheels(directory: Path, stack: tuple[str, ...], constraints: dict[str, str],
                         log: Log) -> dict[str, str]:
    """Wheels of `stack` and everything it needs, resolved by pip against the index, with this
    environment's versions of shared packages as constraints: {name: version}.

    Reused while the request is unchanged. Unlike the smlocal wheelhouse these are resolved, not
    read from installed metadata: the stack is deliberately not installed on the host.
    """
    named = {canonicalize_name(Requirement(line).name) for line in stack}
    # The stack's own pins win (setuptools<81 where the host has a newer one).
    shared = {name: version for name, version in constraints.items() if name not in named}
    request = _stack_request(stack, shared)
    stamp = directory / STACK_STAMP
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == request:
        return {name: version for name, version in _wheel_pins(directory).values()}
    log(f"collecting the reference stack's wheels into {directory}")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="smlocal-reference-") as scratch:
        constraint_file = Path(scratch) / "constraints.txt"
        constraint_file.write_text(requirements_text(shared), encoding="utf-8")
        # `pip wheel` (not download): the toolkit is published as an sdist only.
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "-w", str(directory), "-c", str(constraint_file), *stack],
            capture_output=True, text=True, check=False,
        )
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise ImageError(f"collecting the reference stack failed: {tail}")
    stamp.write_text(request, encoding="utf-8")
    return {name: version for name, version in _wheel_pins(directory).values()}


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def assemble_context(context: Path, sources: list[Path], pins: dict[str, str],
                     entrypoint: Path) -> None:
    """The build context: wheelhouse/ with one wheel per pin (linked from `sources`, first one
    that has it) and requirements.txt, and entrypoint.py. Unchanged files are left alone, so an
    unchanged context is an unchanged docker cache key."""
    wheelhouse = context / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, Path] = {}  # wheel file name -> where it is linked from
    covered: set[str] = set()
    for source in sources:
        for path, (name, version) in _wheel_pins(source).items():
            if pins.get(name) == version and name not in covered:
                wanted[path.name] = path
                covered.add(name)
    missing = sorted(set(pins) - covered)
    if missing:
        raise ImageError(f"no wheel for {', '.join(missing)} in {', '.join(map(str, sources))}")
    for path in wheelhouse.iterdir():
        if path.name not in wanted and path.name != REQUIREMENTS:
            path.unlink()
    for name, source in wanted.items():
        target = wheelhouse / name
        if not target.exists():
            _link(source, target)
    text = requirements_text(pins)
    stamp = wheelhouse / REQUIREMENTS
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != text:
        stamp.write_text(text, encoding="utf-8")
    copied = context / "entrypoint.py"
    if not copied.is_file() or copied.read_bytes() != entrypoint.read_bytes():
        shutil.copyfile(entrypoint, copied)


def resolve_reference_base(requested: str | None, log: Log) -> str:
    """The base to build on: the requested image (present or pullable; it needs Python 3.11
    with venv and Java 17), else the debootstrap-made reference base, made when missing."""
    if requested is not None and requested != REFERENCE_BASE_IMAGE:
        if image_id(requested) is not None or try_pull(requested, log):
            return requested
        raise ImageError(f"base image {requested} is not present and cannot be pulled; omit "
                         f"--base-image to build on {REFERENCE_BASE_IMAGE}, made offline")
    if image_id(REFERENCE_BASE_IMAGE) is None:
        make_offline_base(REFERENCE_BASE_IMAGE, log, REFERENCE_BASE_PACKAGES)
    return REFERENCE_BASE_IMAGE


def build_reference_image(
    tag: str = REFERENCE_TAG,
    base_image: str | None = None,
    root: Path = PROJECT_ROOT,
    log: Log = _stderr_log,
    quiet: bool = True,
) -> BuildResult:
    """Build (or refresh from cache) the reference image; raise ImageError with the cause."""
    started = time.perf_counter()
    dockerfile = root / REFERENCE_DOCKERFILE
    if not dockerfile.is_file():
        raise ImageError(f"{dockerfile} not found: run from a checkout of smlocal", 2)
    require_docker()
    with _build_lock(root):
        base = resolve_reference_base(base_image, log)
        # The smlocal wheelhouse holds torch and the handlers' packages; make sure it is current.
        runtime_pins = pinned_closure(runtime_dependencies(root / "pyproject.toml"))
        prepare_wheelhouse(root / WHEELHOUSE, runtime_pins, log)
        handler_pins = handler_closure(root)
        stack_pins = collect_stack_wheels(root / STACK_WHEELS, REFERENCE_STACK, runtime_pins,
                                          log)
        pins = dict(sorted({**handler_pins, **stack_pins}.items()))
        assemble_context(root / CONTEXT, [root / STACK_WHEELS, root / WHEELHOUSE], pins,
                         root / REFERENCE_ENTRYPOINT)
        log(f"building {tag} on {base}")
        previous = image_id(tag)
        command = ["docker", "build", "--force-rm", "--network", "none",
                   "--build-arg", f"BASE_IMAGE={base}",
                   "-f", str(dockerfile), "-t", tag, str(root / CONTEXT)]
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        result = subprocess.run(command, stdout=subprocess.PIPE if quiet else None,
                                stderr=subprocess.STDOUT, text=True, check=False, env=env)
        if result.returncode != 0:
            lines = ANSI_ESCAPE.sub("", result.stdout or "").strip().splitlines()
            for line in lines[-25:]:
                log(f"  {line}")
            cause = next((line for line in reversed(lines) if line.strip()), "see above")
            raise ImageError(f"docker build of the reference image failed "
                             f"(exit {result.returncode}): {cause}")
        identifier = image_id(tag) or ""
        if previous and previous != identifier:
            _docker(["rmi", previous])
    return BuildResult(tag=tag, base_image=base, image_id=identifier,
                       size_bytes=image_size(tag), seconds=time.perf_counter() - started)
