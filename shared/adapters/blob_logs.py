"""Per-step logs as append blobs: cheap appends, read whole or tailed by the API."""

from __future__ import annotations

from functools import cached_property

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient

from shared.adapters.storage_clients import StorageClients

MAX_BLOCK = 4 * 1024 * 1024


class BlobLogs:
    def __init__(self, clients: StorageClients, container: str) -> None:
        self.clients = clients
        self.container_name = container

    @cached_property
    def container(self) -> ContainerClient:
        client = self.clients.blobs.get_container_client(self.container_name)
        try:
            client.create_container()
        except ResourceExistsError:
            pass
        return client

    def append(self, name: str, lines: list[str], *, new: bool = False) -> None:
        """Append lines; `new` says the blob most likely does not exist yet (saves a failed call)."""
        if not lines:
            return
        data = "".join(line.rstrip("\n") + "\n" for line in lines).encode()[:MAX_BLOCK]
        blob = self.container.get_blob_client(name)
        if new:
            self._create(blob)
        try:
            blob.append_block(data)
        except ResourceNotFoundError:
            self._create(blob)
            blob.append_block(data)

    @staticmethod
    def _create(blob: BlobClient) -> None:
        try:
            blob.create_append_blob(if_none_match="*")
        except ResourceExistsError:
            pass

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
