"""`serve`: the SageMaker serving entry point (S1, S5).

The port is bound and listening before anything heavy is imported: the kernel then completes TCP
handshakes into the listen backlog while FastAPI, uvicorn and (in the loading thread) torch
import, so connections are accepted within milliseconds of start (S1). uvicorn drains in-flight
requests on SIGTERM before the lifespan stops the workers (S5).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from types import FrameType

from container.serving.settings import ServingSettings, SettingsError

log = logging.getLogger("smlocal.serve")

LISTEN_BACKLOG = 2048


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # whose proto says TCP. With proto 0, a response written as head then body waited for the
    # client's delayed ACK: 40 ms on every request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _exit_quietly_after_drain(signum: int, frame: FrameType | None) -> None:
    # uvicorn re-raises the signal it handled once it has drained; the default SIGTERM
    # action would then kill the process after a clean shutdown, reporting a failure.
    log.info("shut down after signal %d", signum)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if argv:
        log.warning("serve takes no arguments; ignoring %s", argv)
    try:
        settings = ServingSettings.from_environ()
    except SettingsError as exc:
        log.error("bad setting: %s", exc)
        return 2
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    log.info("listening on %s:%d", settings.host, sock.getsockname()[1])
    from container.serving.runtime import start_early

    start_early(settings)

    import uvicorn

    from container.serving.app import create_app
    from container.serving.connections import uvicorn_options

    signal.signal(signal.SIGTERM, _exit_quietly_after_drain)
    config = uvicorn.Config(
        create_app(settings),
        lifespan="on",
        log_level="info",
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        # SageMaker pings every few seconds; access lines would bury the handler logs.
        access_log=False,
        **uvicorn_options(),
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # Ctrl-C: uvicorn has drained as for SIGTERM, then re-raised the interrupt.
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
