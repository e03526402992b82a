"""Azure Storage clients (tables, queues, blobs) built from the settings.

A connection string is used when `AzureWebJobsStorage` holds one (Azurite, the local stack);
otherwise the service URIs with the managed identity, as the Functions host does with
identity-based connections. `policies` are objects with an azure-core `on_request(request)`
called before every request of every client (through the public `raw_request_hook` option,
which azure-data-tables honours where it ignores `per_call_policies`), and their `on_answer(response)`, if they
have one, after every answer (`raw_response_hook`): tests and benchmarks count, time and trace storage operations
or inject failures with them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.config import Settings

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient, QueueServiceClient


POOL_SIZE = 64
"""Connections kept per storage service. host.json lets each queue trigger run batchSize 8 +
newBatchThreshold 4 = 12 messages at once, four triggers and the HTTP functions share these clients:
requests' default pool of 10 dropped connections under load ("Connection pool is full")."""


ENVIRONMENT_SETTINGS = ("http_proxy", "https_proxy", "all_proxy", "requests_ca_bundle", "curl_ca_bundle")
"""What requests reads from the environment for a session that trusts it (any case)."""


def _transport() -> Any:
    """azure-core's requests transport on a session with a pool sized for the host; retries stay
    off in urllib3 as azure-core sets them (its own retry policy decides). A session that trusts the
    environment scans every variable of it on every request, looking for proxies: with no proxy or CA
    bundle set there is nothing to find, so the session does not look (set one and it does, as before)."""
    import os

    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.trust_env = any(name.lower() in ENVIRONMENT_SETTINGS for name, value in os.environ.items() if value)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE,
                          max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(session=session, session_owner=False)


class StorageClients:
    def __init__(self, settings: Settings, policies: list[Any] | None = None) -> None:
        self.settings = settings
        self.policies = list(policies or [])

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"transport": _transport()}
        if not self.policies:
            return options

        def hook(request: Any) -> None:
            for policy in self.policies:
                policy.on_request(request)

        def answered(response: Any) -> None:
            for policy in self.policies:
                if hasattr(policy, "on_answer"):
                    policy.on_answer(response)

        return {**options, "raw_request_hook": hook, "raw_response_hook": answered}

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
