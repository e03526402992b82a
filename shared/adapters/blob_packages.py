"""Build packages in Blob storage, handed to App Service as read-only SAS URLs.

With a connection string (the local stack) the SAS is signed with the account key; in Azure,
with the managed identity, it is signed with a user-delegation key, which lasts at most 7 days.
`WEBSITE_RUN_FROM_PACKAGE` is read again at every restart, so the URL must outlive restarts:
`package_sas_hours` sets its expiry, and the better path in Azure is the app's own identity
(`WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID`), left to the deployment issue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from shared.adapters.storage_clients import StorageClients
from shared.config import Settings


class BlobPackages:
    def __init__(self, settings: Settings, clients: StorageClients | None = None) -> None:
        self.settings = settings
        self.clients = clients or StorageClients(settings)

    @cached_property
    def container(self) -> Any:
        return self.clients.blobs.get_container_client(self.settings.packages_container)

    def exists(self, blob_name: str) -> bool:
        return bool(self.container.get_blob_client(blob_name).exists())

    def read_url(self, blob_name: str) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        service = self.clients.blobs
        now = datetime.now(UTC)
        expiry = now + timedelta(hours=self.settings.package_sas_hours)
        signing: dict[str, Any]
        credential = service.credential
        if getattr(credential, "account_key", None):
            signing = {"account_key": credential.account_key}
        else:
            expiry = min(expiry, now + timedelta(days=7))
            signing = {"user_delegation_key": service.get_user_delegation_key(now - timedelta(minutes=5), expiry)}
        sas = generate_blob_sas(service.account_name, self.settings.packages_container, blob_name,
                                permission=BlobSasPermissions(read=True), expiry=expiry,
                                start=now - timedelta(minutes=5), **signing)
        return f"{self.container.get_blob_client(blob_name).url}?{sas}"
