"""The cloud server: one WSGI app (router) on one port, on loopback and on the Docker bridge's
gateway (where containers reach S3, C5), never on every interface.

Start-up order: moto's app, the records and S3 restored from disk, then the training and
endpoint features registered in the operation table, endpoints that were serving started
again, and only then `server.json` written (what `up` waits for). Shutdown reverses it: running
jobs stopped, endpoint containers removed, S3 mirrored a last time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from harness.cloud import backend
from harness.cloud import docker_engine as engine
from harness.cloud.clients import Clients
from harness.cloud.context import CloudContext
from harness.cloud.endpoints import Endpoints
from harness.cloud.environment import write_sdk_config
from harness.cloud.errors import CloudError
from harness.cloud.logs import LogShipper
from harness.cloud.operations import OperationTable
from harness.cloud.paths import StatePaths
from harness.cloud.persistence import S3Persistence
from harness.cloud.records import RecordStore
from harness.cloud.router import FrontApp
from harness.cloud.runtime import Runtime
from harness.cloud.settings import CloudSettings
from harness.cloud.training import TrainingJobs

log = logging.getLogger("smlocal.cloud")

LOOPBACK = "127.0.0.1"


@dataclass
class ServerInfo:
    """What `server.json` says about a running server."""

    pid: int
    port: int
    addresses: list[str]
    url: str
    container_url: str
    started: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ServerInfo:
        return cls(**json.loads(text))


class AppSlot:
    """The WSGI app the listeners serve, set once everything it needs exists."""

    target: FrontApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.target is not None, "the server answers only once started"
        return self.target(environ, start_response)


@dataclass
class CloudServer:
    settings: CloudSettings
    paths: StatePaths = field(init=False)
    app: AppSlot = field(default_factory=lambda: AppSlot())
    _servers: list[Any] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.paths = StatePaths(self.settings.state_dir)

    def start(self) -> ServerInfo:
        settings = self.settings
        self.paths.root.mkdir(parents=True, exist_ok=True)
        bridge = settings.bridge_address or self._bridge()
        url = settings.loopback_url
        # The server's own calls (restore, jobs, logs) go to a private loopback listener, so
        # the public port opens only once S3 is back: a client never sees a half-restored S3.
        internal = self._listen(LOOPBACK, 0)
        clients = Clients(f"http://{LOOPBACK}:{internal.server_port}", settings.region)
        self.persistence = S3Persistence(self.paths.s3_dir, clients)
        records = RecordStore(self.paths.records_file)
        self.shipper = LogShipper(clients)
        context = CloudContext(settings, self.paths, clients, records, self.shipper,
                               container_url=f"http://{bridge}:{settings.port}")
        self.training = TrainingJobs(context)
        self.endpoints = Endpoints(context)
        operations = OperationTable()
        operations.register_all(self.training.operations())
        operations.register_all(self.endpoints.operations())
        self.runtime = Runtime(self.endpoints, settings.invocation_timeout_s)
        self.app.target = FrontApp(operations, self.runtime, backend.moto_app(),
                                   self.persistence, clients.iam)
        # moto's backends live in the process: start from empty, whatever ran here before.
        urllib.request.urlopen(urllib.request.Request(f"{clients.url}/moto-api/reset",
                                                      method="POST"), timeout=30).close()
        restored = self.persistence.restore()
        self.persistence.start()
        self.training.recover()
        # The default bucket exists before the port opens: a client's first call may use it.
        write_sdk_config(self.paths.sdk_config, clients)
        addresses = [LOOPBACK] if bridge == LOOPBACK else [LOOPBACK, bridge]
        for address in addresses:
            self._listen(address, settings.port)
        self.endpoints.restore()
        info = ServerInfo(pid=os.getpid(), port=settings.port, addresses=addresses, url=url,
                          container_url=context.container_url, started=time.time())
        self.paths.server_file.write_text(info.to_json())
        log.info("smlocal cloud on %s (containers: %s); %d S3 objects restored from %s",
                 ", ".join(f"{a}:{settings.port}" for a in addresses), context.container_url,
                 restored, self.paths.s3_dir)
        return info

    @staticmethod
    def _bridge() -> str:
        try:
            return engine.bridge_gateway()
        except Exception as exc:  # docker.errors.DockerException and its transport errors
            raise CloudError(f"the Docker engine does not answer ({type(exc).__name__}: "
                             f"{str(exc)[:200]}); jobs and endpoints need it", 3) from exc

    def _listen(self, address: str, port: int) -> Any:
        from werkzeug.serving import make_server

        server = make_server(address, port, self.app, threaded=True,
                             request_handler=backend.request_handler_class())
        self._servers.append(server)
        thread = threading.Thread(target=server.serve_forever, name=f"http-{address}:{port}",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)
        return server

    def stop(self) -> None:
        log.info("smlocal cloud stopping")
        self.training.interrupt_all()
        self.endpoints.shut_down()
        self.persistence.stop()
        self.shipper.stop()
        self.runtime.close()
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join(timeout=10)
        # Whatever is still labelled ours (a job's network after a crash) goes too.
        engine.remove_ours(self.settings.instance_id)
        self.paths.server_file.unlink(missing_ok=True)
        log.info("smlocal cloud stopped")
