"""The deploy-package step against the App Service emulator: zip deployment for a Python app (what it
supports), run-from-package read with the app's managed identity elsewhere, and a deployment that
ends only when the new build answers, although App Service restarts the slot later."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.app_service_emulator import AppServiceEmulator
from local.azurite import REPO, Azurite
from shared.adapters.arm_app_service import ArmAppService
from shared.adapters.blob_packages import BlobPackages
from shared.adapters.http_probe import HttpxProbe
from shared.schemas.release import ReleaseIn
from shared.services import definitions, releases
from tests.integration.conftest import World

sys.path.insert(0, str(REPO / "examples"))
from build import build_package, upload  # type: ignore[import-not-found]  # noqa: E402

pytestmark = pytest.mark.azurite  # storage faults, operation counts and limits need the real store

SUB, RG = "00000000-0000-0000-0000-0000000000ee", "rg-deploy"
IDENTITY = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app"


@pytest.fixture
def azure(world: World, azurite: Azurite) -> Iterator[tuple[World, AppServiceEmulator]]:
    with AppServiceEmulator() as emulator:
        emulator.restart_seconds = 0.4  # App Service restarts after it answered
        emulator.add_site(SUB, RG, "pyapp", slots=["dev"], stack="PYTHON|3.11")
        emulator.add_site(SUB, RG, "nodeapp", slots=["dev"], stack="NODE|20-lts")
        emulator.read_blob = lambda url: __import__("azure.storage.blob", fromlist=["BlobClient"]).BlobClient \
            .from_blob_url(url, credential=azurite.credential).download_blob().readall()
        settings = world.deps.settings.__class__(**{**world.deps.settings.__dict__, "arm_endpoint": emulator.url,
                                                    "arm_auth": "local-emulator", "slot_url_scheme": "http"})
        world.deps.settings = settings
        world.deps.app_service = ArmAppService(settings)
        world.deps.packages = BlobPackages(settings, world.deps.store.clients)
        world.deps.probe = HttpxProbe()
        yield world, emulator


def pipeline(world: World, site: str, **step: Any) -> int:
    body = {"name": site, "artifacts": [{"alias": "web", "source": site}], "stages": [
        {"name": "Dev", "target": {"subscriptionId": SUB, "resourceGroup": RG, "site": site, "slot": "dev"},
         "trigger": {"type": "afterRelease"},
         "steps": [{"type": "deploy-package", "verifyPath": "/health", **step},
                   {"type": "http-check", "path": "/health", "expectText": "{version}"}]}]}
    return int(definitions.create(world.deps, body, by="amita")["id"])


def release(world: World, did: int, source: str, version: str) -> int:
    settings = world.deps.settings
    upload(build_package(version), f"{source}/{version}.zip", settings.storage_connection,
           settings.packages_container)
    art = {"alias": "web", "version": version, "package": f"{source}/{version}.zip"}
    return releases.create(world.deps, ReleaseIn(definitionId=did, artifacts=[art]),  # type: ignore[list-item]
                           by="amita")[0].id


def dev_page(world: World, site: str) -> Any:
    from shared.domain.target import Target

    return httpx.get(f"{world.deps.app_service.read_slot(Target(SUB, RG, site, 'dev')).url}/health").json()


def test_a_python_app_gets_a_zip_deployment_and_the_step_waits_for_the_new_build(
        azure: tuple[World, AppServiceEmulator]) -> None:
    world, emulator = azure
    did = pipeline(world, "pyapp")
    for version in ("1.0.0", "1.1.0"):
        rid = release(world, did, "pyapp", version)
        world.pump(limit=1000)
        dev = world.get(rid).stages["Dev"]
        assert dev.status == "succeeded", dev.current
        assert dev_page(world, "pyapp")["version"] == version  # what the step waited for
    publishes = [p for m, p in emulator.sites[(SUB.lower(), RG.lower(), "pyapp")].slots["dev"].kudu.requests
                 if m == "POST"]  # type: ignore[union-attr]
    assert publishes == ["/api/publish", "/api/publish"]
    settings = world.deps.app_service.read_slot(__import__("shared.domain.target", fromlist=["Target"]).Target(
        SUB, RG, "pyapp", "dev")).app_settings
    assert "WEBSITE_RUN_FROM_PACKAGE" not in settings and settings["SLIPWAY_VERSION"] == "1.1.0"
    log = releases.step_log(world.deps, rid, "Dev", 1, 0)[2]
    assert "deploying by zipDeploy" in log and "the new build answers" in log


def test_run_from_package_on_python_is_refused_before_anything_changes(azure: tuple[World, AppServiceEmulator]) -> None:
    world, _ = azure
    did = pipeline(world, "pyapp", method="runFromPackage", packageIdentity=IDENTITY)
    rid = release(world, did, "pyapp", "2.0.0")
    world.pump(limit=1000)
    dev = world.get(rid).stages["Dev"].current
    assert dev is not None and dev.status == "failed" and "not supported for Python" in (dev.failure or "")


def test_run_from_package_reads_the_snapshot_with_the_apps_identity_no_sas(
        azure: tuple[World, AppServiceEmulator]) -> None:
    world, emulator = azure
    emulator.blob_readers.add(IDENTITY)
    did = pipeline(world, "nodeapp", packageIdentity=IDENTITY)
    rid = release(world, did, "nodeapp", "3.0.0")
    world.pump(limit=1000)
    assert world.get(rid).stages["Dev"].status == "succeeded", world.get(rid).stages["Dev"].current
    from shared.domain.target import Target

    settings = world.deps.app_service.read_slot(Target(SUB, RG, "nodeapp", "dev")).app_settings
    assert "sig=" not in settings["WEBSITE_RUN_FROM_PACKAGE"] and "snapshot=" in settings["WEBSITE_RUN_FROM_PACKAGE"]
    assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == IDENTITY
    emulator.scale_out(SUB, RG, "nodeapp")  # read again at every start: no expiry to outlive
    assert dev_page(world, "nodeapp")["version"] == "3.0.0"
