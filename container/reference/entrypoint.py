"""The reference image's entrypoint: `serve` starts the AWS serving stack the way the AWS
PyTorch inference images start it; any other command runs as given.

What the AWS images do (aws/deep-learning-containers, pytorch/inference, the entrypoint copied
to /usr/local/bin/dockerd-entrypoint.py), reproduced here:
- SAGEMAKER_MODEL_SERVER_WORKERS is overwritten with the number of CPUs before anything reads
  it (serving contract S26), whatever the caller set; only SAGEMAKER_TS_MIN_WORKERS and
  SAGEMAKER_TS_MAX_WORKERS (with any SAGEMAKER_TS_* set) choose the worker count then;
- `serve` calls the toolkit's `sagemaker_pytorch_serving_container.serving.main()`, which
  writes TorchServe's properties from the SAGEMAKER_* variables, pip-installs
  /opt/ml/model/code/requirements.txt and starts TorchServe on SAGEMAKER_BIND_TO_PORT;
- when TorchServe exits, the container does not: it idles until killed, so a dead model server
  shows as a refused /ping rather than as an exited container.

The one change: another command (`python -c ...`, `bash`) exits with its own status here, where
the AWS script idles after it too; that keeps `docker run --rm IMAGE COMMAND` usable.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
from typing import NoReturn

SERVING_MODULE = "sagemaker_pytorch_serving_container.serving"


def serve() -> NoReturn:
    serving = importlib.import_module(SERVING_MODULE)
    serving.main()
    print("reference entrypoint: TorchServe exited; idling like the AWS image", flush=True)
    while True:
        signal.pause()


def main(argv: list[str]) -> int:
    os.environ["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(multiprocessing.cpu_count())
    if not argv or argv[0] == "serve":
        serve()
    return subprocess.call(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
