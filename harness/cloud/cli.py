"""The `smlocal cloud` command group: its parser and handlers (harness/cli.py only wires it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cloud.settings import DEFAULT_STATE_DIR, CloudSettings


def _settings(args: argparse.Namespace) -> CloudSettings:
    return CloudSettings.from_environ(
        port=args.port, state_dir=Path(args.state_dir) if args.state_dir else None,
        serving_image=getattr(args, "serving_image", None))


def _cmd_up(args: argparse.Namespace) -> int:
    from harness.cloud.daemon import run_foreground, start_detached

    settings = _settings(args)
    if not args.detach:
        return run_foreground(settings)
    info = start_detached(settings)
    print(f"smlocal cloud ready at {info.url} (pid {info.pid}, log "
          f"{settings.state_dir / 'server.log'}); `eval \"$(smlocal cloud env)\"` points a "
          "shell at it, `smlocal cloud down` stops it")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    from harness.cloud.daemon import running_server
    from harness.cloud.environment import environment, export_lines, write_sdk_config
    from harness.cloud.paths import StatePaths

    settings = _settings(args)
    paths = StatePaths(settings.state_dir)
    info = running_server(paths)
    url = info.url if info is not None and args.port is None else settings.loopback_url
    if not paths.sdk_config.is_file():
        write_sdk_config(paths.sdk_config)
    for line in export_lines(environment(url, settings.region, paths.sdk_config)):
        print(line)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from harness.cloud.daemon import running_server
    from harness.cloud.paths import StatePaths
    from harness.cloud.status import status_lines

    settings = _settings(args)
    info = running_server(StatePaths(settings.state_dir))
    for line in status_lines(info, settings):
        print(line)
    return 0 if info is not None else 1


def _cmd_down(args: argparse.Namespace) -> int:
    from harness.cloud.daemon import stop

    settings = _settings(args)
    info, leftovers = stop(settings)
    if info is None:
        print("smlocal cloud was not running")
    else:
        print(f"smlocal cloud stopped (pid {info.pid}); S3 kept in "
              f"{settings.state_dir / 's3'}")
    if leftovers:
        print(f"removed {leftovers} leftover container(s)/network(s)")
    return 0


def _cmd_image(args: argparse.Namespace) -> int:
    from harness.cloud.image import build_cloud_image

    print(build_cloud_image(tag=args.tag, base_image=args.base_image))
    return 0


def add_cloud_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cloud = commands.add_parser(
        "cloud", help="the SageMaker API on this machine: real jobs and endpoints, offline"
    ).add_subparsers(dest="cloud_command", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=None,
                            help="the server's port (default 4580, SMLOCAL_CLOUD_PORT)")
        parser.add_argument("--state-dir", default=None,
                            help=f"state: S3 objects, records, logs (default "
                            f"{DEFAULT_STATE_DIR}, SMLOCAL_CLOUD_DIR)")

    up = cloud.add_parser("up", help="start the server (foreground, or --detach)")
    common(up)
    up.add_argument("--detach", action="store_true",
                    help="run in the background; `smlocal cloud down` stops it")
    up.add_argument("--serving-image", default=None, metavar="IMAGE",
                    help="what endpoints of AWS PyTorch inference images run: `reference` "
                    "for the AWS serving stack (smlocal image build --reference), or a local "
                    "tag (default: SMLOCAL_CLOUD_SERVING_IMAGE, else the smlocal image)")
    up.set_defaults(handler=_cmd_up)

    env = cloud.add_parser("env", help="print `export` lines: eval \"$(smlocal cloud env)\"")
    common(env)
    env.set_defaults(handler=_cmd_env)

    status = cloud.add_parser("status", help="the server, its jobs, endpoints, containers")
    common(status)
    status.set_defaults(handler=_cmd_status)

    down = cloud.add_parser("down", help="stop the server; S3 objects stay on disk")
    common(down)
    down.set_defaults(handler=_cmd_down)

    image = cloud.add_parser("image", help="build the image of the compose service `cloud`")
    image.add_argument("--tag", default="smlocal-cloud:latest")
    image.add_argument("--base-image", default="smlocal:latest",
                       help="the smlocal image to build on (`smlocal image build`)")
    image.set_defaults(handler=_cmd_image)
