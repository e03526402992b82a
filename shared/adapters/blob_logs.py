"""Step logs as blobs, as Slipway wrote them before each step run's lines went into the change that records
the run (shared/services/step_logs.py): read for the steps that began before, deleted by retention."""

from __future__ import annotations

from functools import cached_property

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.adapters.storage_clients import StorageClients


class BlobLogs:
    def __init__(self, clients: StorageClients, container: str) -> None:
        self.clients = clients
        self.container_name = container

    @cached_property
    def container(self) -> ContainerClient:
        """Never created here: reading or deleting a log changes nothing (a missing container is a 404)."""
        return self.clients.blobs.get_container_client(self.container_name)

    def read(self, name: str) -> str | None:
        try:
            return self.container.get_blob_client(name).download_blob().readall().decode(errors="replace")
        except ResourceNotFoundError:
            return None

    def delete(self, name: str) -> None:
        try:
            self.container.get_blob_client(name).delete_blob()
        except ResourceNotFoundError:
            pass
