"""The image's entrypoint: `train`, `serve`, or any other command as given (T1, S1).

SageMaker starts a training container as `docker run IMAGE train` and a serving container as
`docker run IMAGE serve`; everything else (`bash`, `python -c ...`) is executed unchanged so the
image stays debuggable.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    sys.exit(main())
