"""deploy-container: the App Service adapter sets and reads a slot's container image through the real
azure-mgmt-web client against the emulator, and the step kind points a slot at an image pinned by digest,
marks it with the release and waits until the new container answers."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from local.app_service_emulator import AppServiceEmulator
from local.azurite import REPO
from shared.adapters.arm_app_service import ArmAppService
from shared.adapters.http_probe import HttpxProbe
from shared.config import Settings
from shared.domain.plan import StagePlan, StepPlan
from shared.domain.release import Release, StageRun, StepRun
from shared.domain.target import Target
from shared.ports import TargetError
from shared.schemas.step_container import DeployContainerStep
from shared.services.deps import Deps
from shared.services.steps.container import deploy_container, stop_container
from shared.services.steps.context import Outcome, StepContext
from tests.integration.conftest import memory_world

sys.path.insert(0, str(REPO / "examples"))
from build import build_package  # type: ignore[import-not-found]  # noqa: E402

SUB, RG = "00000000-0000-0000-0000-0000000000c7", "rg-containers"
REGISTRY = "tailspinacr.azurecr.io/web"
DEV, PROD = Target(SUB, RG, "web", "dev"), Target(SUB, RG, "web")


@pytest.fixture
def emulator() -> Iterator[AppServiceEmulator]:
    with AppServiceEmulator() as running:
        running.restart_seconds = 0.2  # App Service restarts (and pulls) after it answered
        running.add_site(SUB, RG, "web", slots=["dev", "staging"], stack="PYTHON|3.11")
        yield running


@pytest.fixture
def arm(emulator: AppServiceEmulator) -> ArmAppService:
    return ArmAppService(Settings(arm_endpoint=emulator.url, arm_auth="local-emulator", slot_url_scheme="http"))


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


def config_writes(emulator: AppServiceEmulator) -> int:
    return sum(1 for method, path in emulator.requests if method == "PATCH" and path.endswith("/config/web"))


# -- the adapter


def test_a_slot_runs_the_image_it_is_pointed_at_and_reads_it_back(emulator: AppServiceEmulator,
                                                                 arm: ArmAppService) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    assert arm.container(DEV) is None and arm.stack(DEV) == "PYTHON|3.11"
    arm.set_container(DEV, image)
    assert arm.container(DEV) == image and arm.stack(DEV) == f"DOCKER|{image}"
    assert arm.container(PROD) is None  # each slot has its own site config
    assert eventually(lambda: '"2.0.0"' in page(arm, DEV))  # pulled and started after the answer
    arm.set_container(PROD, image)
    assert arm.container(PROD) == image


def test_the_emulator_refuses_what_is_not_an_image_reference(emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    for bad in ["Tailspinacr.azurecr.io/Web:1.0", f"{REGISTRY}@sha256:abc", f"{REGISTRY}@sha256:{'A' * 64}",
                f"{REGISTRY}:bad tag", f"{REGISTRY}::1", "", f"https://{REGISTRY}:1.0"]:
        with pytest.raises(TargetError) as caught:
            arm.set_container(DEV, bad)
        assert not caught.value.retryable and "LinuxFxVersion" in str(caught.value), bad
    assert arm.container(DEV) is None
    emulator.add_site(SUB, RG, "winapp", kind="app", stack="")
    with pytest.raises(TargetError) as windows:
        arm.set_container(Target(SUB, RG, "winapp"), f"{REGISTRY}:1.0")
    assert not windows.value.retryable and "Linux" in str(windows.value)


def test_a_linux_function_app_takes_a_container_the_same_way(emulator: AppServiceEmulator,
                                                             arm: ArmAppService) -> None:
    emulator.add_site(SUB, RG, "func", slots=["staging"], stack="", kind="functionapp,linux")
    image = emulator.push_image("tailspinacr.azurecr.io/func", build_package("3.0.0"))
    arm.set_container(Target(SUB, RG, "func", "staging"), image)
    assert arm.container(Target(SUB, RG, "func", "staging")) == image
    assert arm.container(Target(SUB, RG, "func")) is None


def test_the_image_swaps_with_the_slot_content_and_its_marks(emulator: AppServiceEmulator,
                                                            arm: ArmAppService) -> None:
    old = emulator.push_image(REGISTRY, build_package("1.0.0"))
    new = emulator.push_image(REGISTRY, build_package("2.0.0"))
    arm.set_container(PROD, old)
    arm.set_container(DEV, new)
    arm.write_app_settings(DEV, {"SLIPWAY_VERSION": "2.0.0"})
    assert eventually(lambda: '"2.0.0"' in page(arm, DEV))
    arm.wait_seconds = 10
    assert arm.swap(Target(SUB, RG, "web"), "dev", "production").done
    assert arm.container(PROD) == new and arm.container(DEV) == old
    assert arm.read_slot(PROD).app_settings["SLIPWAY_VERSION"] == "2.0.0"
    assert '"2.0.0"' in page(arm, PROD)


def test_a_digest_keeps_a_slot_on_its_image_when_the_tag_moves(emulator: AppServiceEmulator,
                                                               arm: ArmAppService) -> None:
    pinned = emulator.push_image(REGISTRY, build_package("1.0.0"), tag="stable")
    arm.set_container(DEV, pinned)
    arm.set_container(Target(SUB, RG, "web", "staging"), f"{REGISTRY}:stable")
    assert eventually(lambda: '"1.0.0"' in page(arm, DEV) and '"1.0.0"' in page(arm, Target(SUB, RG, "web",
                                                                                            "staging")))
    emulator.push_image(REGISTRY, build_package("1.0.1-hotfix"), tag="stable")  # someone moves the tag
    emulator.scale_out(SUB, RG, "web")  # a new instance pulls again
    assert '"1.0.0"' in page(arm, DEV)
    assert '"1.0.1-hotfix"' in page(arm, Target(SUB, RG, "web", "staging"))


def test_an_image_the_registry_does_not_have_does_not_start(emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    arm.set_container(DEV, f"{REGISTRY}@sha256:{'0' * 64}")
    assert eventually(lambda: "pull failed" in page(arm, DEV))


def test_setting_the_image_is_retryable_when_throttled(emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    emulator.inject_faults("PATCH", r"/config/web$", 429, headers={"Retry-After": "7"})
    with pytest.raises(TargetError) as caught:
        arm.set_container(DEV, f"{REGISTRY}:1.0")
    assert caught.value.retryable and caught.value.retry_after == 7.0
    assert arm.container(DEV) is None


# -- the step kind


@pytest.fixture
def deps(emulator: AppServiceEmulator, arm: ArmAppService) -> Deps:
    deps = memory_world().deps
    deps.app_service = arm
    deps.probe = HttpxProbe()
    return deps


def artifact(version: str, sha256: str | None = None) -> dict[str, Any]:
    found = {"alias": "web", "source": "web", "version": version, "isPrimary": True}
    return {**found, "sha256": sha256} if sha256 else found


def context(step: dict[str, Any], art: dict[str, Any], state: dict[str, Any] | None = None,
            now: datetime | None = None) -> StepContext:
    """The step as a definition gives it (validated by its model), in release 7's stage Dev on web/dev."""
    config = DeployContainerStep.model_validate({"type": "deploy-container", **step}).model_dump(exclude_none=True)
    plan = StepPlan(0, "deploy-container", "Deploy container", False, config)
    stage = StagePlan("Dev", "afterRelease", (), False, (plan,),
                      {"subscriptionId": SUB, "resourceGroup": RG, "site": "web", "slot": "dev"})
    release = Release(7, "1", 1, "Release-7", "2026-11-23T09:00:00+00:00", "amita", "manual", "", [art],
                      {"name": "Web"}, {"Dev": StageRun("Dev")})
    return StepContext(release, stage, plan, StepRun(0, "deploy-container", "Deploy container",
                                                     state=dict(state or {})), now or datetime.now(UTC))


def run(deps: Deps, step: dict[str, Any], art: dict[str, Any], limit: int = 100) -> tuple[Outcome, list[str]]:
    """Run the step as the queue would: again after each retry's delay, with the state it kept."""
    state: dict[str, Any] = {}
    lines: list[str] = []
    for _ in range(limit):
        ctx = context(step, art, state)
        outcome = deploy_container(deps, ctx)
        lines += ctx.lines
        if outcome.kind != "retry":
            return outcome, lines
        state = outcome.state
        time.sleep(min(outcome.delay, 0.2))
    raise AssertionError("the step never ended")


def test_the_step_points_the_slot_at_the_image_and_waits_for_the_new_container(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    digest = image.rsplit(":", 1)[1]
    step = {"image": f"{REGISTRY}@sha256:$(Release.Artifacts.web.Sha256)", "verifyPath": "/health"}
    outcome, lines = run(deps, step, artifact("2.0.0", digest))
    assert outcome.kind == "succeeded", outcome.message
    assert arm.container(DEV) == image and '"2.0.0"' in page(arm, DEV)
    settings = arm.read_slot(DEV).app_settings
    assert (settings["SLIPWAY_RELEASE_ID"], settings["SLIPWAY_VERSION"], settings["SLIPWAY_PACKAGE_SHA256"]) == \
        ("7", "2.0.0", digest)
    assert [(r["releaseId"], r["version"], r["sha256"]) for r in outcome.slots] == [(7, "2.0.0", digest)]
    assert any("the new container answers" in line for line in lines)


def test_delivered_twice_the_second_run_changes_nothing(deps: Deps, emulator: AppServiceEmulator) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    step = {"image": image}
    first, _ = run(deps, step, artifact("2.0.0"))
    writes = (config_writes(emulator), len(emulator.settings_log))
    second, lines = run(deps, step, artifact("2.0.0"))
    assert first.kind == second.kind == "succeeded" and "already" in second.message
    assert (config_writes(emulator), len(emulator.settings_log)) == writes == (1, 1)
    assert second.slots[0]["releaseId"] == 7


def test_a_crash_between_the_image_and_the_marks_is_finished_by_the_next_run(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    arm.set_container(DEV, image)  # what the first run did before its host died
    outcome, lines = run(deps, {"image": image, "verifyPath": "/health"}, artifact("2.0.0"))
    assert outcome.kind == "succeeded", outcome.message
    assert config_writes(emulator) == 1  # the image was not written again
    assert arm.read_slot(DEV).app_settings["SLIPWAY_RELEASE_ID"] == "7"
    assert not any("pointing it at" in line for line in lines)


def test_the_same_image_in_a_new_release_only_moves_the_marks(deps: Deps, emulator: AppServiceEmulator,
                                                             arm: ArmAppService) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    arm.set_container(DEV, image)
    arm.write_app_settings(DEV, {"SLIPWAY_RELEASE_ID": "6", "SLIPWAY_VERSION": "2.0.0", "KEEP": "me"})
    outcome, _ = run(deps, {"image": image}, artifact("2.0.0"))
    assert outcome.kind == "succeeded" and config_writes(emulator) == 1
    settings = arm.read_slot(DEV).app_settings
    assert settings["SLIPWAY_RELEASE_ID"] == "7" and settings["KEEP"] == "me"


def test_an_image_not_pinned_by_digest_or_not_the_registered_build_is_refused_before_anything_changes(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"), tag="2.0.0")
    tagged, _ = run(deps, {"image": f"{REGISTRY}:{{version}}"}, artifact("2.0.0"))
    assert tagged.kind == "failed" and "not pinned by digest" in tagged.message
    other, _ = run(deps, {"image": image}, artifact("2.0.0", "ab" * 32))
    assert other.kind == "failed" and "registered with sha256" in other.message
    assert config_writes(emulator) == 0 and emulator.settings_log == []
    assert arm.container(DEV) is None


def test_the_model_refuses_a_fixed_image_without_a_digest() -> None:
    with pytest.raises(ValidationError) as caught:
        DeployContainerStep.model_validate({"type": "deploy-container", "image": f"{REGISTRY}:latest"})
    assert caught.value.errors()[0]["loc"] == ("image",)
    for image in [f"{REGISTRY}:{{version}}", f"{REGISTRY}@sha256:$(Digest)", f"{REGISTRY}:1.0@sha256:{'a' * 64}"]:
        assert DeployContainerStep.model_validate({"type": "deploy-container", "image": image}).image == image
    with pytest.raises(ValidationError):
        DeployContainerStep.model_validate({"type": "deploy-container",
                                            "image": f"DOCKER|{REGISTRY}@sha256:{'a' * 64}"})


def test_throttling_and_errors_are_retried_by_the_runner_and_never_a_success_not_seen(
        deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    step = {"image": image, "verifyPath": "/health"}
    emulator.inject_faults("PATCH", r"/slots/dev/config/web$", 429, headers={"Retry-After": "3"})
    with pytest.raises(TargetError) as throttled:
        deploy_container(deps, context(step, artifact("2.0.0")))
    assert throttled.value.retryable and throttled.value.retry_after == 3.0
    assert arm.container(DEV) is None
    # ARM did the work and then failed the answer: the next run sees the image and writes only the marks.
    emulator.inject_faults("PATCH", r"/slots/dev/config/web$", 500, after=True)
    with pytest.raises(TargetError) as failed:
        deploy_container(deps, context(step, artifact("2.0.0")))
    assert failed.value.retryable and arm.container(DEV) == image
    assert "SLIPWAY_RELEASE_ID" not in arm.read_slot(DEV).app_settings  # no mark of a deployment not seen
    outcome, _ = run(deps, step, artifact("2.0.0"))
    assert outcome.kind == "succeeded" and config_writes(emulator) == 2  # the refused one and the one that took


def test_a_container_that_never_answers_fails_the_step_at_its_deadline(deps: Deps,
                                                                      emulator: AppServiceEmulator) -> None:
    image = f"{REGISTRY}@sha256:{'1' * 64}"  # never pushed: the pull fails
    step = {"image": image, "verifyPath": "/health", "verifyTimeoutSeconds": 60}
    first = deploy_container(deps, context(step, artifact("2.0.0")))
    assert first.kind == "retry" and first.state["phase"] == "verify"
    late = datetime.now(UTC) + timedelta(minutes=2)
    assert eventually(lambda: "pull failed" in httpx.get(deps.app_service.read_slot(DEV).url + "/health").text)
    outcome = deploy_container(deps, context(step, artifact("2.0.0"), first.state, late))
    assert outcome.kind == "failed" and "did not show '2.0.0'" in outcome.message and "503" in outcome.message


def test_stop_says_what_the_step_left(deps: Deps, emulator: AppServiceEmulator) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    assert "nothing to stop" in stop_container(deps, context({"image": image}, artifact("2.0.0")))
    first = deploy_container(deps, context({"image": image, "verifyPath": "/health"}, artifact("2.0.0")))
    line = stop_container(deps, context({"image": image}, artifact("2.0.0"), first.state))
    assert "web/dev" in line and image in line


def test_the_step_deploys_to_the_slot_it_names(deps: Deps, emulator: AppServiceEmulator, arm: ArmAppService) -> None:
    image = emulator.push_image(REGISTRY, build_package("2.0.0"))
    outcome, _ = run(deps, {"image": image, "slot": "staging", "verifyPath": "/health"}, artifact("2.0.0"))
    assert outcome.kind == "succeeded", outcome.message
    assert arm.container(Target(SUB, RG, "web", "staging")) == image and arm.container(DEV) is None
    assert outcome.slots[0]["slot"].endswith("/slots/staging")
