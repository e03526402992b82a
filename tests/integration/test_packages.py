"""Packages proven: Slipway computes the digest when a build is registered, keeps its own read-only
copy, and checks the bytes again before it deploys them."""

from __future__ import annotations

import hashlib
import os

import pytest
from azure.storage.blob import BlobServiceClient

from functions import releases_api as rels
from shared.adapters.blob_packages import BlobPackages
from shared.services import releases
from tests.integration.conftest import World, stage
from tests.integration.test_http_api import api, call  # noqa: F401  (fixture)

PIPELINE = {"name": "Proven", "artifacts": [{"alias": "web", "source": "proven-web",
                                              "trigger": {"branches": {"include": ["main"]}}}],
            "stages": [stage("Dev", {"type": "afterRelease"}, steps=[{"type": "deploy-package"}])]}


def hook(version: str, **extra: str) -> dict[str, str]:
    return {"source": "proven-web", "version": version, "branch": "main", "package": f"proven-web/{version}.zip",
            **extra}


def test_a_digest_that_is_not_the_packages_is_a_400_naming_sha256(api: World) -> None:  # noqa: F811
    api.define(PIPELINE["stages"], artifacts=PIPELINE["artifacts"])
    api.deps.packages.blobs.add("proven-web/1.0.zip", b"the real bytes")  # type: ignore[attr-defined]
    status, problem = call(rels.artifact_webhook, "POST", hook("1.0", sha256="0" * 64))
    assert status == 400 and [e["field"] for e in problem["errors"]] == ["sha256"]
    assert hashlib.sha256(b"the real bytes").hexdigest() in problem["errors"][0]["message"]
    assert api.deps.store.artifact("proven-web", "1.0") is None and api.deps.packages.stored == {}  # type: ignore
    status, body = call(rels.releases_collection, "POST", {"definitionId": 1, "artifacts": [
        {"alias": "web", "version": "1.0", "package": "proven-web/1.0.zip", "sha256": "1" * 64}]})
    assert status == 400 and problem["errors"][0]["field"] == "sha256"
    assert "artifacts[0].sha256" in [e["field"] for e in body["errors"]]
    status, out = call(rels.artifact_webhook, "POST", hook("1.0"))  # no digest given: Slipway computes it
    assert status == 201, out
    record = api.deps.store.artifact("proven-web", "1.0")
    assert record["sha256"] == hashlib.sha256(b"the real bytes").hexdigest() and record["size"] == 14


def test_a_package_changed_after_registration_never_deploys(api: World) -> None:  # noqa: F811
    did = api.define(PIPELINE["stages"], artifacts=PIPELINE["artifacts"])["id"]
    api.deps.packages.blobs.add("proven-web/2.0.zip", b"approved bytes")  # type: ignore[attr-defined]
    assert call(rels.artifact_webhook, "POST", hook("2.0"))[0] == 201
    api.pump()
    first = releases.newest(api.deps, did, limit=1)[0]
    assert first.stages["Dev"].status == "succeeded"
    api.deps.packages.tamper(api.deps.store.artifact("proven-web", "2.0")["stored"], b"evil")  # type: ignore
    status, second = call(rels.releases_collection, "POST", {"definitionId": did,
                                                             "artifacts": [{"alias": "web", "version": "2.0"}]})
    assert status == 201, second
    api.pump()
    dep = api.get(second["id"]).stages["Dev"].current
    assert dep.status == "failed"
    assert f"expected sha256 {hashlib.sha256(b'approved bytes').hexdigest()}" in dep.failure
    assert f"found {hashlib.sha256(b'evil').hexdigest()}" in dep.failure


def test_a_package_url_is_downloaded_once_and_shown_without_its_signature(api: World) -> None:  # noqa: F811
    api.define(PIPELINE["stages"], artifacts=PIPELINE["artifacts"])
    url = "https://builds.example/web-3.0.zip?sv=2025&sig=SECRETSIGNATURE"
    api.deps.packages.urls[url] = b"downloaded"  # type: ignore[attr-defined]
    body = {"source": "proven-web", "version": "3.0", "branch": "main", "packageUrl": url}
    status, out = call(rels.artifact_webhook, "POST", body)
    assert status == 201, out
    status, shown = call(rels.release_item, "GET", releaseId=out["releases"][0]["id"])
    assert shown["artifacts"][0]["packageUrl"] == "https://builds.example/web-3.0.zip"
    assert "SECRETSIGNATURE" not in str(shown), shown
    assert "stored" not in shown["artifacts"][0]
    status, problem = call(rels.artifact_webhook, "POST", {**body, "version": "3.1",
                                                             "packageUrl": "https://builds.example/missing.zip"})
    assert status == 400 and problem["errors"][0]["field"] == "packageUrl"


@pytest.mark.parametrize("name", ["a/../b.zip", "a/./b.zip", "a//b.zip", "a/b/.."])
def test_package_names_with_dot_segments_are_refused(api: World, name: str) -> None:  # noqa: F811
    status, problem = call(rels.artifact_webhook, "POST", {"source": "proven-web", "version": "4.0", "package": name})
    assert status == 400 and problem["errors"][0]["field"] == "package"


@pytest.mark.azurite  # the real blob adapter
def test_the_stored_copy_is_a_snapshot_that_outlives_changes_to_the_blobs(world: World) -> None:
    """Against Azurite: the upload and even Slipway's own blob may be overwritten; the snapshot a
    release names keeps the registered bytes, and its digest is computed from them."""
    settings = world.deps.settings
    packages = BlobPackages(settings)
    service = BlobServiceClient.from_connection_string(settings.storage_connection)
    uploads = service.get_container_client(settings.packages_container)
    uploads.create_container()
    uploads.get_blob_client("web/1.zip").upload_blob(b"approved" * 1000)
    stored = packages.store("web/1.zip", "web/1/copy.zip")
    assert stored.sha256 == hashlib.sha256(b"approved" * 1000).hexdigest() and stored.size == 8000
    uploads.get_blob_client("web/1.zip").upload_blob(b"evil", overwrite=True)
    packages.store_container.get_blob_client("web/1/copy.zip").upload_blob(b"evil", overwrite=True)
    assert packages.digest(stored.name, stored.snapshot) == stored.sha256
    path, digest = packages.download(stored.name, stored.snapshot)
    with open(path, "rb") as f:
        assert f.read() == b"approved" * 1000 and digest == stored.sha256
    os.remove(path)
    with pytest.raises(Exception, match="BlobAlreadyExists|already exists"):
        packages.store("web/1.zip", "web/1/copy.zip")  # never overwrites a stored package
