"""Which local image runs a job or an endpoint (C18).

The SDK names AWS's images (`763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:
1.3.1-cpu-py3`, `pytorch-inference`, `.amazonaws.com.cn` in China); offline every one of them is
the smlocal image, which reproduces both. Any other name must be an image the engine already has
(a local tag such as `smlocal:latest`): nothing is ever pulled.
"""

from __future__ import annotations

import re
from collections.abc import Callable

AWS_PYTORCH_IMAGE = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
    r"pytorch-(training|inference)(-[a-z0-9-]+)?(:[\w.-]+)?$"
)


class ImageUnavailable(Exception):
    """The image is neither an AWS PyTorch image nor present on the engine."""


def resolve_image(uri: str, local_image: str, exists: Callable[[str], bool]) -> str:
    if AWS_PYTORCH_IMAGE.match(uri):
        return local_image
    if exists(uri):
        return uri
    raise ImageUnavailable(
        f"image {uri} is not an AWS PyTorch image (which runs as {local_image}) and the Docker "
        "engine does not have it; smlocal cloud never pulls")
