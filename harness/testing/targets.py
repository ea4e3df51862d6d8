"""Target specs as the CLI and the pytest plugin take them: `asgi`, `http://HOST:PORT`,
`endpoint:NAME`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from harness.testing.asgi import AsgiTarget
from harness.testing.endpoint import EndpointTarget
from harness.testing.http import HttpTarget

AnyTarget = AsgiTarget | HttpTarget | EndpointTarget
SPEC_HELP = "asgi, http://HOST:PORT or endpoint:NAME"


class TargetSpecError(ValueError):
    """A target spec, or the options it needs, that cannot be used."""


def open_target(
    spec: str,
    *,
    model_dir: Path | None = None,
    code_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    install_requirements: bool = True,
    region: str | None = None,
) -> AnyTarget:
    """Open the target `spec` names; close it (or use `with`) when done.

    `asgi` needs `model_dir` (the unpacked model.tar.gz) and takes `code_dir` (default
    model_dir/code) and the serving `environ`; the others ignore them.
    """
    if spec == "asgi":
        if model_dir is None:
            raise TargetSpecError("the asgi target needs a model directory (--model-dir)")
        if not model_dir.is_dir():
            raise TargetSpecError(f"model directory {model_dir} does not exist")
        if code_dir is not None and not code_dir.is_dir():
            raise TargetSpecError(f"code directory {code_dir} does not exist")
        return AsgiTarget.serving(model_dir, code_dir, environ=environ,
                                  install_requirements=install_requirements)
    if spec.startswith(("http://", "https://")):
        parts = urlsplit(spec)
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise TargetSpecError(
                f"{spec!r}: give the container's base address, e.g. http://127.0.0.1:8080"
            )
        return HttpTarget(spec)
    if spec.startswith("endpoint:"):
        name = spec.removeprefix("endpoint:")
        if not name:
            raise TargetSpecError("endpoint: needs the endpoint's name, e.g. endpoint:cola-bert")
        return EndpointTarget(name, region=region)
    raise TargetSpecError(f"unknown target {spec!r}; use {SPEC_HELP}")
