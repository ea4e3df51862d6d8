"""The image's entrypoint: `train`, `serve`, or any other command as given (T1, S1).

SageMaker starts a training container as `docker run IMAGE train` and a serving container as
`docker run IMAGE serve`; everything else (`bash`, `python -c ...`) is executed unchanged so the
image stays debuggable.
"""

from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: container {train|serve|COMMAND [ARG ...]}", file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command == "train":
        from container.training.main import main as train_main

        return int(train_main(rest))
    if command == "serve":
        from container.serving.main import main as serve_main

        return int(serve_main(rest))
    try:
        os.execvp(command, args)
    except FileNotFoundError:
        print(f"container: command not found: {command}", file=sys.stderr)
        return 127


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown, after flushing what the process has written.

    Once the server has drained (S5) there is nothing left to clean up, but freeing a loaded
    model and unloading torch and transformers takes about a second, which SIGTERM -> exit
    (docker stop, scale-in, `docker compose down`) would otherwise wait for.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_code = main()
    if sys.argv[1:2] == ["serve"]:
        exit_now(exit_code)
    sys.exit(exit_code)
