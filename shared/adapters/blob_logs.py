"""Per-step logs as blobs, read whole or tailed by the API. A step that takes one run (most do) writes its
log in one call, as a block blob; a step that looks again (a deployment, a script, a callback) appends
to an append blob, one call per run. A block blob that gets more lines after all (a run sent again
after its host died) is rewritten with them under its ETag."""

from __future__ import annotations

from functools import cached_property

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobType, ContainerClient

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

    def append(self, name: str, lines: list[str], *, new: bool = False, whole: bool = False) -> None:
        """Append lines; `new` says the blob most likely does not exist yet (saves a failed call), `whole` that
        nothing is likely to follow (one Put Blob instead of creating an append blob and appending)."""
        if not lines:
            return
        data = "".join(line.rstrip("\n") + "\n" for line in lines).encode()[:MAX_BLOCK]
        blob = self.container.get_blob_client(name)
        if new and whole:
            try:
                blob.upload_blob(data, blob_type=BlobType.BLOCKBLOB, overwrite=False)  # If-None-Match: *
                return
            except ResourceExistsError:
                pass  # an earlier run of the step wrote it: add to it
        elif new:
            self._create(blob)
        try:
            blob.append_block(data)
        except ResourceNotFoundError:
            self._create(blob)
            blob.append_block(data)
        except ResourceExistsError as exc:  # 409 InvalidBlobType: a log written whole gets more lines
            if getattr(exc, "error_code", None) != "InvalidBlobType":
                raise
            self._rewrite(blob, data)

    @staticmethod
    def _rewrite(blob: BlobClient, data: bytes) -> None:
        """Add `data` to a block blob: read it and write it back longer, under the ETag read (a concurrent
        writer's 412 reads again)."""
        for _ in range(8):
            found = blob.download_blob()
            old = found.readall()
            try:
                blob.upload_blob(old + data, blob_type=BlobType.BLOCKBLOB, overwrite=True,
                                 etag=found.properties.etag, match_condition=MatchConditions.IfNotModified)
                return
            except ResourceModifiedError:
                continue
        raise ResourceModifiedError("the log kept changing while lines were added to it")

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
