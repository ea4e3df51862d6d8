"""`python -m harness.cloud ACTION`: the `smlocal cloud` commands alone (the cloud image's
entry point, which carries no other command group)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from harness.cloud.cli import add_cloud_parser
from harness.errors import CommandError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.cloud")
    add_cloud_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(["cloud", *(sys.argv[1:] if argv is None else argv)])
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CommandError as exc:
        print(f"smlocal cloud: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
