"""The App Service adapter drives the emulator through the real azure-mgmt-web client."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.app_service_emulator import AppServiceEmulator
from local.azurite import REPO, Azurite
from shared.adapters.arm_app_service import ArmAppService
from shared.adapters.blob_packages import BlobPackages
from shared.config import Settings
from shared.domain.target import Target
from shared.ports import TargetError

sys.path.insert(0, str(REPO / "examples"))
from build import build_package, upload  # type: ignore[import-not-found]  # noqa: E402

SUB = "00000000-0000-0000-0000-0000000000cc"


def read_sas(packages: BlobPackages, name: str, snapshot: str, hours: int) -> str:
    """A read-only SAS URL of a stored snapshot, as a user would sign one (Slipway itself never does:
    a signed URL expires, so it deploys by zip or with the app's identity)."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    service = packages.clients.blobs
    blob = packages.store_container.get_blob_client(name, snapshot=snapshot)
    sas = generate_blob_sas(service.account_name, packages.store_container.container_name, name, snapshot=snapshot,
                            account_key=service.credential.account_key, permission=BlobSasPermissions(read=True),
                            expiry=datetime.now(UTC) + timedelta(hours=hours))
    return f"{blob.url}&{sas}"
DEV = Target(SUB, "rg-web", "tailspin", "dev")


@pytest.fixture
def emulator() -> Iterator[AppServiceEmulator]:
    with AppServiceEmulator() as running:
        running.add_site(SUB, "rg-web", "tailspin", slots=["dev", "test"])
        yield running


@pytest.fixture
def settings(emulator: AppServiceEmulator, azurite: Azurite, unique: str) -> Settings:
    return Settings(storage_connection=azurite.connection_string, arm_endpoint=emulator.url,
                    arm_auth="local-emulator", slot_url_scheme="http", packages_container=f"pkg{unique}",
                    package_store_container=f"store{unique}")


def test_settings_round_trip_and_replace_everything(settings: Settings) -> None:
    arm = ArmAppService(settings)
    arm.write_app_settings(DEV, {"A": "1", "B": "2"})
    arm.write_app_settings(DEV, {"B": "3"})
    slot = arm.read_slot(DEV)
    assert slot.app_settings == {"B": "3"} and slot.url.startswith("http://127.0.0.1:")
    assert arm.read_slot(Target(SUB, "rg-web", "tailspin")).app_settings == {}


def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def zip_deploy(settings: Settings, target: Target, version: str) -> None:
    """What the deploy-package step does: push the package, follow the deployment to its end."""
    arm = ArmAppService(settings)
    with tempfile.NamedTemporaryFile(suffix=".zip", delete=False) as f:
        f.write(build_package(version))
    status = arm.zip_deploy(target, f.name)
    os.remove(f.name)
    finished = status is None
    while not finished:
        finished, ok, text = arm.deployment_status(target, status)  # type: ignore[arg-type]
        time.sleep(0.05)
    assert status is None or ok, text


def test_zip_deployment_serves_the_new_build_after_the_slot_restarts(settings: Settings,
                                                                     emulator: AppServiceEmulator) -> None:
    arm = ArmAppService(settings)
    assert arm.stack(DEV) == "PYTHON|3.11"
    url = arm.read_slot(DEV).url
    zip_deploy(settings, DEV, "1.0.0")
    assert eventually(lambda: "1.0.0" in httpx.get(f"{url}/health").text)
    emulator.restart_seconds = 1.0
    zip_deploy(settings, DEV, "1.1.0")
    assert httpx.get(f"{url}/health").json()["version"] == "1.0.0"  # deployed, not restarted yet: the old build
    assert eventually(lambda: httpx.get(f"{url}/health").json()["version"] == "1.1.0")
    arm.write_app_settings(DEV, {"A": "1"})  # settings change: answered now, restarted later, content stays
    assert eventually(lambda: httpx.get(f"{url}/health").json()["version"] == "1.1.0")


def test_the_deployment_endpoint_refuses_what_kudu_refuses(settings: Settings, emulator: AppServiceEmulator) -> None:
    arm = ArmAppService(settings)
    base = arm._scm_base(DEV)
    assert httpx.post(f"{base}/api/publish", params={"type": "zip"}, content=build_package("1.0.0")).status_code == 401
    arm.write_app_settings(DEV, {"WEBSITE_RUN_FROM_PACKAGE": "https://elsewhere.example/p.zip"})
    with pytest.raises(TargetError) as err:
        zip_deploy(settings, DEV, "1.0.0")
    assert not err.value.retryable and "409" in str(err.value) and "remote URL" in str(err.value)
    arm.write_app_settings(DEV, {})
    slot = emulator.sites[(SUB.lower(), "rg-web", "tailspin")].slots["dev"]
    slot.kudu.deploy_seconds = 5  # type: ignore[union-attr]
    with tempfile.NamedTemporaryFile(suffix=".zip", delete=False) as f:
        f.write(build_package("1.0.0"))
    assert arm.zip_deploy(DEV, f.name)
    with pytest.raises(TargetError) as err:
        arm.zip_deploy(DEV, f.name)  # one at a time
    assert err.value.retryable and "in progress" in str(err.value)
    os.remove(f.name)


def test_run_from_package_is_refused_for_python_and_a_sas_stops_working_when_it_expires(
        settings: Settings, emulator: AppServiceEmulator) -> None:
    from datetime import UTC, datetime, timedelta

    arm, packages = ArmAppService(settings), BlobPackages(settings)
    emulator.restart_seconds = 0
    upload(build_package("2.0.0"), "web/2.0.0.zip", settings.storage_connection, settings.packages_container)
    stored = packages.store("web/2.0.0.zip", "web/2.0.0/copy.zip")
    sas = read_sas(packages, stored.name, stored.snapshot, hours=168)
    arm.write_app_settings(DEV, {"WEBSITE_RUN_FROM_PACKAGE": sas})
    page = httpx.get(arm.read_slot(DEV).url)
    assert page.status_code == 503 and "not supported for Python" in page.text
    emulator.add_site(SUB, "rg-web", "nodeapp", slots=["dev"], stack="NODE|20-lts")
    node = Target(SUB, "rg-web", "nodeapp", "dev")
    arm.write_app_settings(node, {"WEBSITE_RUN_FROM_PACKAGE": sas})
    assert "2.0.0" in httpx.get(f"{arm.read_slot(node).url}/health").text
    later = datetime.now(UTC) + timedelta(hours=168 + 1)
    emulator.now = lambda: later  # the SAS expired: the next start cannot read the package
    emulator.scale_out(SUB, "rg-web", "nodeapp")
    page = httpx.get(arm.read_slot(node).url)
    assert page.status_code == 503 and "SAS expired" in page.text


def test_run_from_package_with_the_apps_identity_needs_no_sas(settings: Settings, emulator: AppServiceEmulator,
                                                            azurite: Azurite) -> None:
    from azure.storage.blob import BlobClient

    arm, packages = ArmAppService(settings), BlobPackages(settings)
    emulator.restart_seconds = 0
    emulator.add_site(SUB, "rg-web", "funcapp", stack="", kind="functionapp,linux")
    app = Target(SUB, "rg-web", "funcapp")
    identity = f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.ManagedIdentity/" \
               "userAssignedIdentities/f"
    emulator.read_blob = lambda url: BlobClient.from_blob_url(url, credential=azurite.credential
                                                              ).download_blob().readall()
    upload(build_package("3.0.0"), "web/3.0.0.zip", settings.storage_connection, settings.packages_container)
    stored = packages.store("web/3.0.0.zip", "web/3.0.0/copy.zip")
    plain = {"WEBSITE_RUN_FROM_PACKAGE": packages.blob_url(stored.name, stored.snapshot),
             "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID": identity}
    arm.write_app_settings(app, plain)
    assert httpx.get(arm.read_slot(app).url).status_code == 503  # not granted Storage Blob Data Reader yet
    emulator.blob_readers.add(identity)
    emulator.scale_out(SUB, "rg-web", "funcapp")
    assert "3.0.0" in httpx.get(f"{arm.read_slot(app).url}/health").text
    assert arm.stack(app) == "functionapp,linux"


def test_throttling_is_retryable_with_retry_after(settings: Settings, emulator: AppServiceEmulator) -> None:
    emulator.inject_faults("POST", r"/slots/dev/config/appsettings/list$", 429, headers={"Retry-After": "17"})
    with pytest.raises(TargetError) as err:
        ArmAppService(settings).read_slot(DEV)
    assert err.value.retryable and err.value.retry_after == 17
    emulator.inject_faults("GET", r"/slots/dev$", 503)
    with pytest.raises(TargetError) as err:
        ArmAppService(settings).read_slot(DEV)
    assert err.value.retryable


def test_an_unknown_site_is_final_and_named(settings: Settings) -> None:
    with pytest.raises(TargetError) as err:
        ArmAppService(settings).read_slot(Target(SUB, "rg-web", "nosuchapp", "dev"))
    assert not err.value.retryable and "nosuchapp/dev" in str(err.value)


def test_the_build_is_deterministic() -> None:
    assert build_package("3.1.4") == build_package("3.1.4") != build_package("3.1.5")


PROD = Target(SUB, "rg-web", "tailspin")
SITE = PROD


def deploy(settings: Settings, target: Target, version: str) -> None:
    arm = ArmAppService(settings)
    zip_deploy(settings, target, version)
    current = arm.read_slot(target).app_settings
    arm.write_app_settings(target, {**current, "MARK": version})
    url = arm.read_slot(target).url
    assert eventually(lambda: version in httpx.get(f"{url}/health").text)


def serving(settings: Settings, target: Target) -> str:
    return str(httpx.get(f"{ArmAppService(settings).read_slot(target).url}/health").json()["version"])


def test_swap_exchanges_content_and_non_sticky_settings(settings: Settings) -> None:
    arm = ArmAppService(settings)
    deploy(settings, PROD, "1.0.0")
    deploy(settings, DEV, "1.1.0")
    arm.set_sticky_names(SITE, ["SLOT_NAME"])
    arm.write_app_settings(DEV, {**arm.read_slot(DEV).app_settings, "SLOT_NAME": "dev"})
    arm.write_app_settings(PROD, {**arm.read_slot(PROD).app_settings, "SLOT_NAME": "prod"})
    assert arm.slots(SITE) == ["production", "dev", "test"]
    progress = arm.swap(SITE, "dev", "production")
    assert progress.done
    assert serving(settings, PROD) == "1.1.0" and serving(settings, DEV) == "1.0.0"
    assert arm.read_slot(PROD).app_settings["MARK"] == "1.1.0"
    assert arm.read_slot(PROD).app_settings["SLOT_NAME"] == "prod"  # sticky stays
    assert arm.sticky_names(SITE) == ["SLOT_NAME"]


def test_a_slow_swap_hands_back_a_token_to_look_again(settings: Settings, emulator: AppServiceEmulator) -> None:
    deploy(settings, PROD, "1.0.0")
    deploy(settings, DEV, "1.1.0")
    arm = ArmAppService(settings)
    arm.wait_seconds = 0
    emulator.operation_polls, emulator.operation_seconds = 3, 3600
    progress = arm.swap(SITE, "dev", "production")
    assert not progress.done and progress.token
    assert serving(settings, PROD) == "1.0.0"  # not swapped yet
    arm.wait_seconds = 2
    progress = arm.swap(SITE, "dev", "production", token=progress.token)
    assert progress.done and serving(settings, PROD) == "1.1.0"
    assert [p for m, p in emulator.requests if m == "POST" and p.endswith("slotsswap")] == \
        [f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Web/sites/tailspin/slots/dev/slotsswap"]


def test_no_poller_keeps_polling_after_the_call_returns(settings: Settings, emulator: AppServiceEmulator) -> None:
    import threading
    import time

    deploy(settings, PROD, "1.0.0")
    deploy(settings, DEV, "1.1.0")
    arm = ArmAppService(settings)
    arm.wait_seconds = 0.3
    emulator.operation_polls, emulator.operation_seconds = 1000, 3600  # a swap that takes a long while
    threads = threading.active_count()
    progress = arm.swap(SITE, "dev", "production")
    for _ in range(3):  # the step looks again three times, as its delayed messages would
        assert not progress.done
        progress = arm.swap(SITE, "dev", "production", token=progress.token)

    def polls() -> int:
        return sum(1 for m, p in emulator.requests if m == "GET" and p.startswith("/operations/"))

    seen = polls()
    time.sleep(2.5)
    assert polls() == seen  # nothing polls between the looks
    assert threading.active_count() <= threads
    assert len([p for m, p in emulator.requests if m == "POST" and p.endswith("slotsswap")]) == 1


def test_a_failing_warm_up_aborts_the_swap(settings: Settings) -> None:
    arm = ArmAppService(settings)
    deploy(settings, PROD, "1.0.0")
    deploy(settings, DEV, "1.1.0")
    arm.write_app_settings(DEV, {**arm.read_slot(DEV).app_settings, "WEBSITE_SWAP_WARMUP_PING_PATH": "/missing",
                                 "WEBSITE_SWAP_WARMUP_PING_STATUSES": "200"})
    with pytest.raises(TargetError) as err:
        arm.swap(SITE, "dev", "production")
    assert not err.value.retryable and "warm-up" in str(err.value)
    assert serving(settings, PROD) == "1.0.0"


def test_preview_applies_production_sticky_settings_and_reset_restores(settings: Settings) -> None:
    arm = ArmAppService(settings)
    arm.set_sticky_names(SITE, ["DB"])
    arm.write_app_settings(PROD, {"DB": "prod-db"})
    arm.write_app_settings(DEV, {"DB": "dev-db", "OTHER": "x"})
    arm.apply_slot_config(SITE, "dev")
    assert arm.read_slot(DEV).app_settings == {"DB": "prod-db", "OTHER": "x"}
    arm.reset_slot_config(SITE, "dev")
    assert arm.read_slot(DEV).app_settings == {"DB": "dev-db", "OTHER": "x"}


def test_making_a_setting_sticky_keeps_sticky_connection_strings_sticky(settings: Settings) -> None:
    from azure.mgmt.web.models import ConnectionStringDictionary, ConnStringValueTypePair, SlotConfigNamesResource

    arm = ArmAppService(settings)
    web = arm._client(SUB).web_apps
    web.update_slot_configuration_names("rg-web", "tailspin", SlotConfigNamesResource(
        connection_string_names=["Orders"], azure_storage_config_names=["media"]))
    for slot, value in (("production", "prod-sql"), ("dev", "dev-sql")):
        body = ConnectionStringDictionary(properties={"Orders": ConnStringValueTypePair(value=value, type="SQLAzure")})
        if slot == "production":
            web.update_connection_strings("rg-web", "tailspin", body)
        else:
            web.update_connection_strings_slot("rg-web", "tailspin", slot, body)
    deploy(settings, PROD, "1.0.0")
    deploy(settings, DEV, "1.1.0")
    arm.set_sticky_names(SITE, ["SLOT_NAME"])
    names = web.list_slot_configuration_names("rg-web", "tailspin")
    assert names.connection_string_names == ["Orders"] and names.azure_storage_config_names == ["media"]
    assert arm.swap(SITE, "dev", "production").done
    production = web.list_connection_strings("rg-web", "tailspin").properties["Orders"]
    assert production.value == "prod-sql"  # stayed with production through the swap


def test_the_emulator_replaces_the_whole_slot_config_names_as_the_service_does(
        settings: Settings, emulator: AppServiceEmulator) -> None:
    from azure.mgmt.web.models import SlotConfigNamesResource

    web = ArmAppService(settings)._client(SUB).web_apps
    web.update_slot_configuration_names("rg-web", "tailspin", SlotConfigNamesResource(
        app_setting_names=["A"], connection_string_names=["Orders"]))
    web.update_slot_configuration_names("rg-web", "tailspin", SlotConfigNamesResource(app_setting_names=["A", "B"]))
    names = web.list_slot_configuration_names("rg-web", "tailspin")
    assert names.app_setting_names == ["A", "B"] and not names.connection_string_names  # the naive PUT lost it


def test_apply_slot_config_gives_the_current_slot_the_targets_slot_settings_both_ways(settings: Settings) -> None:
    from azure.mgmt.web.models import CsmSlotEntity

    arm = ArmAppService(settings)
    arm.set_sticky_names(SITE, ["DB"])
    arm.write_app_settings(PROD, {"DB": "prod-db"})
    arm.write_app_settings(DEV, {"DB": "dev-db"})
    web = arm._client(SUB).web_apps
    # On the source slot with targetSlot=production (Az PowerShell, the Pipelines task): dev takes prod's.
    web.apply_slot_configuration_slot("rg-web", "tailspin", "dev", CsmSlotEntity(target_slot="production"))
    assert arm.read_slot(DEV).app_settings["DB"] == "prod-db" and arm.read_slot(PROD).app_settings["DB"] == "prod-db"
    web.reset_slot_configuration_slot("rg-web", "tailspin", "dev")
    assert arm.read_slot(DEV).app_settings["DB"] == "dev-db"
    # On production with targetSlot=dev (the az CLI form): production takes dev's, as the API describes.
    web.apply_slot_config_to_production("rg-web", "tailspin", CsmSlotEntity(target_slot="dev"))
    assert arm.read_slot(PROD).app_settings["DB"] == "dev-db" and arm.read_slot(DEV).app_settings["DB"] == "dev-db"
    web.reset_production_slot_config("rg-web", "tailspin")
    assert arm.read_slot(PROD).app_settings["DB"] == "prod-db"


def test_restart_reloads_the_package(settings: Settings) -> None:
    deploy(settings, DEV, "1.0.0")
    ArmAppService(settings).restart(DEV)
    assert serving(settings, DEV) == "1.0.0"
