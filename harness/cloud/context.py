"""What every feature of the server is handed: settings, its own clients, the records, the
log shipper, and the address containers reach the server at."""

from __future__ import annotations

from dataclasses import dataclass

from harness.cloud.clients import Clients
from harness.cloud.logs import LogShipper
from harness.cloud.paths import StatePaths
from harness.cloud.records import RecordStore
from harness.cloud.settings import ACCOUNT_ID, CloudSettings


@dataclass
class CloudContext:
    settings: CloudSettings
    paths: StatePaths
    clients: Clients
    records: RecordStore
    shipper: LogShipper
    # The server as a container sees it: http://<bridge gateway>:<port> (C5).
    container_url: str

    def arn(self, resource: str) -> str:
        return f"arn:aws:sagemaker:{self.settings.region}:{ACCOUNT_ID}:{resource}"

    def log_group_arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.settings.region}:{ACCOUNT_ID}:log-group:{group}"
