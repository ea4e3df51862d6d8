"""A trivial HTTP/1.1 server that answers every request at once: what is left of a load run's
latency and CPU against it is the generator's own cost (and the loopback's).

    python -m harness.bench.loopback        # prints "listening on 127.0.0.1:PORT"

asyncio streams, keep-alive, Content-Length bodies only; GET /ping and POST /invocations both
get 200 with a two-byte JSON body. It runs in its own process (`LoopbackServer`), so it does not
share an interpreter lock with the generator it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from types import TracebackType
from typing import Self

RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"
            b"[]")
MAX_HEADER_BYTES = 64 * 1024


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEADER_BYTES:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
            ValueError):
        return
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", port,
                                        limit=MAX_HEADER_BYTES, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


class LoopbackServer:
    """The server in a child process on a free loopback port; a context manager."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.bench.loopback"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.close()
            raise RuntimeError(f"the loopback server did not start: {line!r}")
        self.url = "http://" + line.removeprefix("listening on ")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
