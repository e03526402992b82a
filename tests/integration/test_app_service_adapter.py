"""The App Service adapter drives the emulator through the real azure-mgmt-web client."""

from __future__ import annotations

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
                    arm_auth="local-emulator", slot_url_scheme="http", packages_container=f"pkg{unique}")


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
        arm.write_app_settings(DEV, {"WEBSITE_RUN_FROM_PACKAGE": packages.read_url(f"web/{version}.zip")})
        url = arm.read_slot(DEV).url
        assert f">{version}<" in httpx.get(url).text
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "version": version}
    assert not packages.exists("web/9.9.9.zip")


def test_a_package_url_without_signature_breaks_the_slot_with_a_reason(settings: Settings) -> None:
    arm, packages = ArmAppService(settings), BlobPackages(settings)
    upload(build_package("2.0.0"), "web/2.0.0.zip", settings.storage_connection, settings.packages_container)
    unsigned = packages.read_url("web/2.0.0.zip").split("?")[0]
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
