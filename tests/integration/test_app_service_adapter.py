"""The App Service adapter drives the emulator through the real azure-mgmt-web client."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator

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


def test_deploying_a_package_serves_its_version(settings: Settings) -> None:
    arm, packages = ArmAppService(settings), BlobPackages(settings)
    for version in ("1.0.0", "1.1.0"):
        upload(build_package(version), f"web/{version}.zip", settings.storage_connection,
               settings.packages_container)
        assert packages.exists(f"web/{version}.zip")
        stored = packages.store(f"web/{version}.zip", f"web/{version}/copy.zip")
        assert packages.digest(stored.name, stored.snapshot) == hashlib.sha256(build_package(version)).hexdigest()
        arm.write_app_settings(DEV, {"WEBSITE_RUN_FROM_PACKAGE": packages.read_url(stored.name, stored.snapshot)})
        url = arm.read_slot(DEV).url
        assert f">{version}<" in httpx.get(url).text
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "version": version}
    assert not packages.exists("web/9.9.9.zip")


def test_a_package_url_without_signature_breaks_the_slot_with_a_reason(settings: Settings) -> None:
    arm, packages = ArmAppService(settings), BlobPackages(settings)
    upload(build_package("2.0.0"), "web/2.0.0.zip", settings.storage_connection, settings.packages_container)
    stored = packages.store("web/2.0.0.zip", "web/2.0.0/copy.zip")
    unsigned = packages.read_url(stored.name, stored.snapshot).split("?")[0]
    arm.write_app_settings(DEV, {"WEBSITE_RUN_FROM_PACKAGE": unsigned})
    page = httpx.get(arm.read_slot(DEV).url)
    assert page.status_code == 503 and "run-from-package failed" in page.text


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
    upload(build_package(version), f"web/{version}.zip", settings.storage_connection, settings.packages_container)
    arm = ArmAppService(settings)
    current = arm.read_slot(target).app_settings
    packages = BlobPackages(settings)
    stored = packages.store(f"web/{version}.zip", f"web/{version}/copy.zip")
    url = packages.read_url(stored.name, stored.snapshot)
    arm.write_app_settings(target, {**current, "WEBSITE_RUN_FROM_PACKAGE": url, "MARK": version})


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
