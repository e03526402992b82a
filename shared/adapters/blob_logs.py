"""Per-step logs as append blobs: cheap appends, read whole or tailed by the API."""

from __future__ import annotations

from functools import cached_property

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

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

    def append(self, name: str, lines: list[str]) -> None:
        if not lines:
            return
        data = "".join(line.rstrip("\n") + "\n" for line in lines).encode()[:MAX_BLOCK]
        blob = self.container.get_blob_client(name)
        try:
            blob.append_block(data)
        except ResourceNotFoundError:
            try:
                blob.create_append_blob(if_none_match="*")
            except ResourceExistsError:
                pass
            blob.append_block(data)

    def read(self, name: str) -> str | None:
        try:
            return self.container.get_blob_client(name).download_blob().readall().decode(errors="replace")
        except ResourceNotFoundError:
            return None
