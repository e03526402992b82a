"""Function apps as deployment targets: the App Service adapter and the deploy-package step against the emulator,
through the real azure-mgmt-web client. A Flex Consumption app takes its code only by One Deploy, which stores the
package in the app's deployment storage and restarts the app from it; it has no slots, no custom containers and no
WEBSITE_RUN_FROM_PACKAGE, refused when a definition is saved and when a step runs. A Premium function app with
slots deploys and swaps as a web app does, and runs a package from its URL in Python too."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError

from local.app_service_emulator import FLEX_PACKAGE, AppServiceEmulator, Site
from local.azurite import REPO
from shared.adapters.arm_app_service import ArmAppService
from shared.adapters.http_probe import HttpxProbe
from shared.config import Settings
from shared.domain.errors import Invalid
from shared.domain.plan import StagePlan, StepPlan
from shared.domain.release import Release, StageRun, StepRun
from shared.domain.target import Target
from shared.ports import TargetError
from shared.schemas.definition import DeployPackageStep
from shared.services import definitions
from shared.services.deps import Deps
from shared.services.steps.context import Outcome, StepContext
from shared.services.steps.deploy import DEPLOY_SECONDS, deploy_package
from tests.fakes import FakePackages
from tests.integration.conftest import memory_world

sys.path.insert(0, str(REPO / "examples"))
from build import build_package  # type: ignore[import-not-found]  # noqa: E402

SUB, RG = "00000000-0000-0000-0000-0000000000f1", "rg-functions"
FLEX, PREM = Target(SUB, RG, "flexfunc"), Target(SUB, RG, "premfunc")
PREM_STAGING = Target(SUB, RG, "premfunc", "staging")
IDENTITY = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/func"
DIGEST = "sha256:" + "0" * 64


@pytest.fixture
def emulator() -> Iterator[AppServiceEmulator]:
    with AppServiceEmulator() as running:
        running.restart_seconds = 0.2  # the app restarts after the deployment answered
        running.add_function_app(SUB, RG, "flexfunc", flex=True)
        running.add_function_app(SUB, RG, "premfunc", slots=["staging"], stack="PYTHON|3.11")
        running.add_site(SUB, RG, "pyweb", slots=["dev"], stack="PYTHON|3.11")
        yield running


@pytest.fixture
def arm(emulator: AppServiceEmulator) -> ArmAppService:
    return ArmAppService(Settings(arm_endpoint=emulator.url, arm_auth="local-emulator", slot_url_scheme="http"))


@pytest.fixture
def deps(arm: ArmAppService) -> Deps:
    deps = memory_world().deps
    deps.app_service = arm
    deps.probe = HttpxProbe()
    return deps


def site(emulator: AppServiceEmulator, name: str) -> Site:
    return emulator.sites[(SUB.lower(), RG.lower(), name)]


def publishes(emulator: AppServiceEmulator, name: str, slot: str = "production") -> int:
    kudu = site(emulator, name).slots[slot].kudu
    assert kudu is not None
    return sum(1 for method, path in kudu.requests if method == "POST" and path == "/api/publish")


def stored_package(emulator: AppServiceEmulator, name: str) -> bytes | None:
    return emulator.deployment_storage[site(emulator, name).deployment_container].get(FLEX_PACKAGE)


def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def page(arm: ArmAppService, target: Target, path: str = "/health") -> str:
    try:
        return httpx.get(arm.read_slot(target).url + path, timeout=5).text
    except httpx.HTTPError as exc:
        return str(exc)


def send(arm: ArmAppService, target: Target, package: bytes) -> str | None:
    with tempfile.NamedTemporaryFile(suffix=".zip", delete=False) as f:
        f.write(package)
    try:
        return arm.zip_deploy(target, f.name)
    finally:
        os.remove(f.name)


def follow(arm: ArmAppService, target: Target, url: str) -> list[tuple[bool, bool, str]]:
    """Every look at the deployment until it ends."""
    looks = [arm.deployment_status(target, url)]
    while not looks[-1][0]:
        assert len(looks) < 200, looks[-3:]
        time.sleep(0.05)
        looks.append(arm.deployment_status(target, url))
    return looks


# -- the adapter and the emulator


def test_the_adapter_tells_a_flex_app_from_a_premium_one_and_a_web_app(emulator: AppServiceEmulator,
                                                                        arm: ArmAppService) -> None:
    flex = arm.hosting(FLEX)
    assert flex["kind"] == "functionapp,linux" and flex["sku"] == "FlexConsumption"
    assert flex["deploymentStorage"] == site(emulator, "flexfunc").deployment_container
    assert "/app-package-flexfunc-" in flex["deploymentStorage"]
    assert arm.hosting(PREM_STAGING) == {"kind": "functionapp,linux", "sku": "ElasticPremium"}  # the site's plan
    assert arm.hosting(Target(SUB, RG, "pyweb", "dev")) == {"kind": "app,linux", "sku": "Standard"}
    assert arm.slots(FLEX) == ["production"] and arm.slots(PREM) == ["production", "staging"]
    assert arm.stack(FLEX) == "functionapp,linux"  # no linuxFxVersion: its runtime is functionAppConfig.runtime


def test_one_deploy_stores_the_package_in_the_deployment_storage_and_the_app_starts_from_it(
        emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    package = build_package("1.0.0")
    url = send(arm, FLEX, package)
    assert url is not None and "/api/deployments/" in url and not url.endswith("/latest")  # followed by its id
    looks = follow(arm, FLEX, url)
    assert looks[0][:2] == (False, False)  # not listed at first: still running, not failed
    assert looks[-1][:2] == (True, True), looks[-1]
    assert stored_package(emulator, "flexfunc") == package
    assert eventually(lambda: '"1.0.0"' in page(arm, FLEX))  # restarted from the blob after the answer
    emulator.scale_out(SUB, RG, "flexfunc")
    assert '"1.0.0"' in page(arm, FLEX)  # every new instance starts from the blob too


def test_a_flex_app_refuses_what_azure_refuses(emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    from azure.mgmt.web.models import Site as SiteModel

    web = arm._client(SUB).web_apps
    with pytest.raises(HttpResponseError) as slot:
        web.begin_create_or_update_slot(RG, "flexfunc", "staging", SiteModel(location="westeurope"))
    assert slot.value.status_code == 400 and "deployment slots" in str(slot.value)
    assert arm.slots(FLEX) == ["production"]
    with pytest.raises(TargetError) as swap:
        arm.swap(FLEX, "staging", "production")
    assert not swap.value.retryable
    with pytest.raises(TargetError) as container:
        arm.set_container(FLEX, f"tailspinacr.azurecr.io/func@{DIGEST}")
    assert not container.value.retryable and "Site.SiteConfig.LinuxFxVersion" in str(container.value)
    assert "Flex Consumption" in str(container.value) and arm.container(FLEX) is None
    arm.write_app_settings(FLEX, {"A": "1"})
    with pytest.raises(TargetError) as setting:
        arm.write_app_settings(FLEX, {"A": "2", "FUNCTIONS_WORKER_RUNTIME": "python"})
    assert not setting.value.retryable and "AppSettings.FUNCTIONS_WORKER_RUNTIME" in str(setting.value)
    assert arm.read_slot(FLEX).app_settings == {"A": "1"}
    arm.write_app_settings(PREM, {"FUNCTIONS_WORKER_RUNTIME": "python"})  # a Premium app takes it


def test_website_run_from_package_does_nothing_on_flex_but_fail_the_next_deployment(
        emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    assert follow(arm, FLEX, send(arm, FLEX, build_package("1.0.0")) or "")[-1][:2] == (True, True)
    arm.write_app_settings(FLEX, {"WEBSITE_RUN_FROM_PACKAGE": "https://elsewhere.example/p.zip"})  # ARM takes it
    emulator.scale_out(SUB, RG, "flexfunc")
    assert '"1.0.0"' in page(arm, FLEX)  # still the blob's package: the setting is not used on Flex
    finished, ok, text = follow(arm, FLEX, send(arm, FLEX, build_package("2.0.0")) or "")[-1]
    assert finished and not ok and "WEBSITE_RUN_FROM_PACKAGE" in text
    assert stored_package(emulator, "flexfunc") == build_package("1.0.0")


def test_deployment_storage_that_refuses_the_write_fails_the_deployment(emulator: AppServiceEmulator,
                                                                         arm: ArmAppService) -> None:
    site(emulator, "flexfunc").storage_denied = True  # the app's identity has no role on the storage yet
    finished, ok, text = follow(arm, FLEX, send(arm, FLEX, build_package("1.0.0")) or "")[-1]
    assert finished and not ok and "403" in text
    assert stored_package(emulator, "flexfunc") is None


# -- the deploy-package step


def artifact(deps: Deps, version: str) -> dict[str, Any]:
    """A build registered as Slipway registers one: stored, with its sha256."""
    packages = deps.packages
    assert isinstance(packages, FakePackages)
    packages.blobs.add(f"func/{version}.zip", build_package(version))
    stored = packages.store(f"func/{version}.zip", f"func/{version}.zip")
    return {"alias": "web", "source": "func", "version": version, "isPrimary": True, "sha256": stored.sha256,
            "stored": stored.name, "snapshot": stored.snapshot}


def context(app: str, slot: str | None, step: dict[str, Any], art: dict[str, Any],
            state: dict[str, Any] | None = None, now: datetime | None = None) -> StepContext:
    """The step as a definition gives it (validated by its model), in release 7's stage Dev on `app`/`slot`."""
    config = DeployPackageStep.model_validate({"type": "deploy-package", **step}).model_dump(exclude_none=True)
    plan = StepPlan(0, "deploy-package", "Deploy", False, config)
    target = {"subscriptionId": SUB, "resourceGroup": RG, "site": app, **({"slot": slot} if slot else {})}
    stage = StagePlan("Dev", "afterRelease", (), False, (plan,), target)
    release = Release(7, "1", 1, "Release-7", "2026-11-23T09:00:00+00:00", "amita", "manual", "", [art],
                      {"name": "Func"}, {"Dev": StageRun("Dev")})
    return StepContext(release, stage, plan, StepRun(0, "deploy-package", "Deploy", state=dict(state or {})),
                       now or datetime.now(UTC))


def run(deps: Deps, app: str, slot: str | None, step: dict[str, Any], art: dict[str, Any],
        state: dict[str, Any] | None = None) -> tuple[Outcome, str]:
    """Run the step as the queue would: again after each retry's delay, with the state it kept."""
    state = dict(state or {})
    lines: list[str] = []
    for _ in range(200):
        ctx = context(app, slot, step, art, state)
        outcome = deploy_package(deps, ctx)
        lines += ctx.lines
        if outcome.kind != "retry":
            return outcome, "\n".join(lines)
        state = outcome.state
        time.sleep(min(outcome.delay, 0.1))
    raise AssertionError("the step never ended")


def test_a_flex_app_gets_the_package_by_one_deploy_once_and_the_step_waits_for_it(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    art = artifact(deps, "2.0.0")
    outcome, log = run(deps, "flexfunc", None, {"verifyPath": "/health"}, art)
    assert outcome.kind == "succeeded", outcome.message
    assert "Flex Consumption" in log and "One Deploy" in log and "the new build answers" in log
    assert stored_package(emulator, "flexfunc") == build_package("2.0.0") and '"2.0.0"' in page(arm, FLEX)
    settings = arm.read_slot(FLEX).app_settings  # what runs where: the release's marks, as app settings
    assert settings["SLIPWAY_RELEASE_ID"] == "7" and settings["SLIPWAY_VERSION"] == "2.0.0"
    assert outcome.slots[0]["releaseId"] == 7 and outcome.slots[0]["version"] == "2.0.0"
    assert publishes(emulator, "flexfunc") == 1
    again, log = run(deps, "flexfunc", None, {"verifyPath": "/health"}, art)  # delivered a second time
    assert again.kind == "succeeded" and "already runs" in log
    assert publishes(emulator, "flexfunc") == 1


def test_a_step_resumed_from_its_state_follows_the_deployment_it_started(deps: Deps,
                                                                          emulator: AppServiceEmulator) -> None:
    art = artifact(deps, "2.1.0")
    first = deploy_package(deps, context("flexfunc", None, {"verifyPath": "/health"}, art))
    assert first.kind == "retry" and first.state["phase"] == "deploying"
    # the invocation ended (or its host died) after recording: the next delivery carries on from the state
    outcome, log = run(deps, "flexfunc", None, {"verifyPath": "/health"}, art, state=first.state)
    assert outcome.kind == "succeeded", outcome.message
    assert publishes(emulator, "flexfunc") == 1 and stored_package(emulator, "flexfunc") == build_package("2.1.0")


def test_a_deployment_that_never_shows_up_fails_at_the_deadline_never_succeeds(
        deps: Deps, emulator: AppServiceEmulator) -> None:
    kudu = site(emulator, "flexfunc").slots["production"].kudu
    assert kudu is not None
    kudu.not_found_looks = 10**6  # the deployment worker recycled: its deployment is never listed
    art = artifact(deps, "2.2.0")
    step = {"verifyPath": "/health", "verifyTimeoutSeconds": 10}
    first = deploy_package(deps, context("flexfunc", None, step, art))
    looking = deploy_package(deps, context("flexfunc", None, step, art, first.state))
    assert looking.kind == "retry"
    still = deploy_package(deps, context("flexfunc", None, step, art, looking.state,
                                         now=datetime.now(UTC) + timedelta(seconds=11)))
    assert still.kind == "retry"  # a deployment gets longer than the new build takes to answer
    late = datetime.now(UTC) + timedelta(seconds=DEPLOY_SECONDS + 1)
    outcome = deploy_package(deps, context("flexfunc", None, step, art, looking.state, now=late))
    assert outcome.kind == "failed" and "did not finish" in outcome.message and "does not list" in outcome.message
    assert publishes(emulator, "flexfunc") == 1


def test_a_flex_app_refuses_a_slot_and_run_from_package_at_run_before_changing_anything(
        deps: Deps, emulator: AppServiceEmulator) -> None:
    art = artifact(deps, "3.0.0")
    slot, _ = run(deps, "flexfunc", "staging", {}, art)
    assert slot.kind == "failed" and "no deployment slots" in slot.message
    package_url, _ = run(deps, "flexfunc", None, {"method": "runFromPackage", "packageIdentity": IDENTITY}, art)
    assert package_url.kind == "failed" and "WEBSITE_RUN_FROM_PACKAGE is not supported" in package_url.message
    assert publishes(emulator, "flexfunc") == 0
    assert not [r for r, _ in emulator.settings_log if r.endswith("/sites/flexfunc")]


def test_a_flex_app_carrying_website_run_from_package_loses_it_then_deploys(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    arm.write_app_settings(FLEX, {"WEBSITE_RUN_FROM_PACKAGE": "1", "KEEP": "me"})
    outcome, log = run(deps, "flexfunc", None, {"verifyPath": "/health"}, artifact(deps, "3.1.0"))
    assert outcome.kind == "succeeded", outcome.message
    settings = arm.read_slot(FLEX).app_settings
    assert "WEBSITE_RUN_FROM_PACKAGE" not in settings and settings["KEEP"] == "me"
    assert "no longer has WEBSITE_RUN_FROM_PACKAGE" in log


def test_throttling_or_a_5xx_while_reading_the_app_is_retryable_and_sends_nothing(
        deps: Deps, emulator: AppServiceEmulator) -> None:
    art = artifact(deps, "3.2.0")
    emulator.inject_faults("GET", r"/sites/flexfunc$", 429, headers={"Retry-After": "7"})
    with pytest.raises(TargetError) as throttled:
        deploy_package(deps, context("flexfunc", None, {}, art))
    assert throttled.value.retryable and throttled.value.retry_after == 7.0
    emulator.inject_faults("GET", r"/sites/flexfunc$", 503)
    with pytest.raises(TargetError) as unavailable:
        deploy_package(deps, context("flexfunc", None, {}, art))
    assert unavailable.value.retryable
    assert publishes(emulator, "flexfunc") == 0
    outcome, _ = run(deps, "flexfunc", None, {}, art)  # the runner's next delivery
    assert outcome.kind == "succeeded" and publishes(emulator, "flexfunc") == 1


def test_a_premium_function_app_deploys_to_its_slot_and_swaps_like_a_web_app(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    outcome, log = run(deps, "premfunc", "staging", {"verifyPath": "/health"}, artifact(deps, "4.0.0"))
    assert outcome.kind == "succeeded", outcome.message
    assert "deploying by zipDeploy" in log and publishes(emulator, "premfunc", "staging") == 1
    arm.wait_seconds = 10
    assert arm.swap(PREM, "staging", "production").done
    assert arm.read_slot(PREM).app_settings["SLIPWAY_VERSION"] == "4.0.0"
    assert eventually(lambda: '"4.0.0"' in page(arm, PREM))


def test_a_python_function_app_runs_from_a_package_url_which_a_python_web_app_may_not(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    packages = deps.packages
    assert isinstance(packages, FakePackages)
    emulator.blob_readers.add(IDENTITY)
    emulator.read_blob = lambda url: next(data for (name, snapshot), data in packages.stored.items()
                                          if packages.blob_url(name, snapshot) == url)
    art = artifact(deps, "5.0.0")
    outcome, log = run(deps, "premfunc", "staging", {"packageIdentity": IDENTITY, "verifyPath": "/health"}, art)
    assert outcome.kind == "succeeded", outcome.message
    assert "deploying by runFromPackage" in log and publishes(emulator, "premfunc", "staging") == 0
    settings = arm.read_slot(PREM_STAGING).app_settings
    assert settings["WEBSITE_RUN_FROM_PACKAGE"] == packages.blob_url(art["stored"], art["snapshot"])
    web, _ = run(deps, "pyweb", "dev", {"method": "runFromPackage", "packageIdentity": IDENTITY}, art)
    assert web.kind == "failed" and "not supported for Python" in web.message


# -- definitions, at save


def definition(app: str, steps: list[dict[str, Any]], slot: str | None = None) -> dict[str, Any]:
    target = {"subscriptionId": SUB, "resourceGroup": RG, "site": app, **({"slot": slot} if slot else {})}
    return {"name": f"{app} pipeline", "artifacts": [{"alias": "web", "source": "func"}],
            "stages": [{"name": "Dev", "target": target, "trigger": {"type": "afterRelease"}, "steps": steps}]}


def test_a_stage_on_a_flex_app_may_not_name_a_slot_swap_run_a_container_or_a_package_url(deps: Deps) -> None:
    body = definition("flexfunc", [{"type": "deploy-package", "method": "runFromPackage", "packageIdentity": IDENTITY},
                                   {"type": "swap"},
                                   {"type": "deploy-container", "image": f"tailspinacr.azurecr.io/func@{DIGEST}"},
                                   {"type": "http-check", "path": "/health", "slot": "blue"}], slot="staging")
    with pytest.raises(Invalid) as refused:
        definitions.create(deps, body, by="amita")
    fields = {e.field: e.message for e in refused.value.errors}
    assert set(fields) == {"stages[0].target.slot", "stages[0].steps[0].method", "stages[0].steps[1].type",
                           "stages[0].steps[2].type", "stages[0].steps[3].slot"}, fields
    assert all("'flexfunc' is a Flex Consumption function app" in m for m in fields.values())
    assert "no deployment slots" in fields["stages[0].target.slot"]
    assert "WEBSITE_RUN_FROM_PACKAGE" in fields["stages[0].steps[0].method"]


def test_what_a_flex_app_or_a_premium_app_supports_is_saved(deps: Deps) -> None:
    definitions.create(deps, definition("flexfunc", [{"type": "deploy-package", "verifyPath": "/health"},
                                                     {"type": "http-check", "path": "/health"}]), by="amita")
    definitions.create(deps, definition("premfunc", [{"type": "deploy-package"}, {"type": "swap"},
                                                     {"type": "deploy-container",
                                                      "image": f"tailspinacr.azurecr.io/func@{DIGEST}"}],
                                        slot="staging"), by="amita")


def test_the_flex_check_is_skipped_when_arm_cannot_be_reached(deps: Deps, emulator: AppServiceEmulator) -> None:
    body = definition("flexfunc", [{"type": "deploy-container", "image": f"tailspinacr.azurecr.io/func@{DIGEST}"}])
    emulator.inject_faults("GET", r"/sites/flexfunc$", 503)
    assert definitions.create(deps, body, by="amita")["revision"] == 1  # not a 400 for ARM's trouble
    with pytest.raises(Invalid):
        definitions.create(deps, body, by="amita")
