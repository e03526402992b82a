"""Azure Storage clients (tables, queues, blobs) built from the settings.

A connection string is used when `AzureWebJobsStorage` holds one (Azurite, the local stack);
otherwise the service URIs with the managed identity, as the Functions host does with
identity-based connections. `policies` are objects with an azure-core `on_request(request)`
called before every request of every client (through the public `raw_request_hook` option,
which azure-data-tables honours where it ignores `per_call_policies`): tests and benchmarks
count storage operations or inject failures with them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.config import Settings

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient, QueueServiceClient


class StorageClients:
    def __init__(self, settings: Settings, policies: list[Any] | None = None) -> None:
        self.settings = settings
        self.policies = list(policies or [])

    def _options(self) -> dict[str, Any]:
        if not self.policies:
            return {}

        def hook(request: Any) -> None:
            for policy in self.policies:
                policy.on_request(request)

        return {"raw_request_hook": hook}

    @cached_property
    def credential(self) -> Any:
        from azure.identity import ManagedIdentityCredential

        client_id = self.settings.storage_client_id or None
        return ManagedIdentityCredential(client_id=client_id)

    @cached_property
    def tables(self) -> TableServiceClient:
        from azure.data.tables import TableServiceClient

        if self.settings.storage_connection:
            return TableServiceClient.from_connection_string(self.settings.storage_connection, **self._options())
        return TableServiceClient(self.settings.table_service_uri, credential=self.credential, **self._options())

    @cached_property
    def queues(self) -> QueueServiceClient:
        from azure.storage.queue import QueueServiceClient

        if self.settings.storage_connection:
            return QueueServiceClient.from_connection_string(self.settings.storage_connection, **self._options())
        return QueueServiceClient(self.settings.queue_service_uri, credential=self.credential, **self._options())

    def queue(self, name: str) -> QueueClient:
        """A queue client that base64-encodes: the Functions queue trigger poisons anything else."""
        from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

        return self.queues.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy(),
                                            message_decode_policy=TextBase64DecodePolicy())

    @cached_property
    def blobs(self) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        if self.settings.storage_connection:
            return BlobServiceClient.from_connection_string(self.settings.storage_connection, **self._options())
        return BlobServiceClient(self.settings.blob_service_uri, credential=self.credential, **self._options())
