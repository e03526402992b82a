"""Build packages in Blob storage: uploaded by builds, then owned by Slipway.

When a version is registered, Slipway streams the uploaded blob (or a package URL) into its own
container, computing the sha256 of exactly the bytes it writes, and takes a blob snapshot:
a snapshot cannot be modified, only deleted (learn.microsoft.com, "Blob snapshots"), so what was
registered and approved is what every stage deploys. Deployments read the snapshot again and
check its digest before they use it.

Read URLs are SAS URLs of the snapshot (`sr=bs`): signed with the account key on the local stack,
with a user-delegation key (at most 7 days) in Azure.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import httpx
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters import tls
from shared.adapters.storage_clients import StorageClients
from shared.config import Settings
from shared.ports import MissingUpload, StoredPackage

MAX_PACKAGE = 4 * 1024**3
"""Larger than any App Service deployment accepts (zip deploy takes up to 2 GB)."""


class BlobPackages:
    def __init__(self, settings: Settings, clients: StorageClients | None = None) -> None:
        self.settings = settings
        self.clients = clients or StorageClients(settings)

    @cached_property
    def uploads(self) -> Any:
        return self.clients.blobs.get_container_client(self.settings.packages_container)

    @cached_property
    def store_container(self) -> Any:
        """The container deployment creates (infra/app/storage.bicep); `_write` creates it if it went missing."""
        return self.clients.blobs.get_container_client(self.settings.package_store_container)

    def upload(self, name: str, path: str) -> None:
        _ensure(self.uploads)
        with open(path, "rb") as data:
            self.uploads.get_blob_client(name).upload_blob(data, overwrite=True)

    def store(self, upload: str, dest: str) -> StoredPackage:
        try:
            source = self.uploads.get_blob_client(upload).download_blob()
        except ResourceNotFoundError:
            raise MissingUpload(upload) from None
        return self._write(dest, source.chunks())

    def fetch(self, url: str, dest: str) -> StoredPackage:
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(30.0, read=120.0), verify=tls.context()) as response:
                if response.status_code != 200:
                    raise ValueError(f"GET answered {response.status_code}")
                return self._write(dest, response.iter_bytes(4 * 1024 * 1024))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ValueError(f"cannot download it: {type(exc).__name__}") from None

    def _write(self, dest: str, chunks: Iterator[bytes]) -> StoredPackage:
        digest = hashlib.sha256()
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                size += len(chunk)
                if size > MAX_PACKAGE:
                    raise ValueError(f"larger than {MAX_PACKAGE} bytes")
                digest.update(chunk)
                yield chunk

        blob = self.store_container.get_blob_client(dest)
        body = _whole_if_small(counted())
        if not isinstance(body, bytes):  # a stream cannot be sent twice: the container first
            _ensure(self.store_container)
        try:
            blob.upload_blob(body, overwrite=False)
        except ResourceNotFoundError:  # ContainerNotFound: nothing was written
            _ensure(self.store_container)
            blob.upload_blob(body, overwrite=False)
        snapshot = blob.create_snapshot()["snapshot"]
        return StoredPackage(dest, snapshot, digest.hexdigest(), size)

    def digest(self, name: str, snapshot: str) -> str:
        digest = hashlib.sha256()
        for chunk in self.store_container.get_blob_client(name, snapshot=snapshot).download_blob().chunks():
            digest.update(chunk)
        return digest.hexdigest()

    def download(self, name: str, snapshot: str) -> tuple[str, str]:
        import tempfile

        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(prefix="slipway-package-", suffix=".zip", delete=False) as out:
            for chunk in self.store_container.get_blob_client(name, snapshot=snapshot).download_blob().chunks():
                digest.update(chunk)
                out.write(chunk)
        return out.name, digest.hexdigest()

    def blob_url(self, name: str, snapshot: str) -> str:
        return str(self.store_container.get_blob_client(name, snapshot=snapshot).url)

    def discard(self, name: str) -> None:
        try:
            self.store_container.get_blob_client(name).delete_blob(delete_snapshots="include")
        except ResourceNotFoundError:
            pass


SMALL = 4 * 1024 * 1024
"""A package up to this size is sent in one Put Blob (its length known); a larger one streams in blocks."""


def _ensure(container: Any) -> None:
    """Create a container that may exist already (someone else's create, or the deployment's, wins)."""
    try:
        container.create_container()
    except ResourceExistsError:
        pass


def _whole_if_small(chunks: Iterator[bytes]) -> bytes | Iterator[bytes]:
    """The chunks as one bytes object when they end within SMALL (the SDK sends bytes of known length in one
    Put Blob, and a stream of unknown length as blocks and a block list: three calls for a small package)."""
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > SMALL:
            return itertools.chain(head, chunks)
    return b"".join(head)
