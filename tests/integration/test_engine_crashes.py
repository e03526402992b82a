"""A host that dies at any storage call of an engine step's handler, and the queue's redelivery: the
same end state, and the engine asked once (one ARM deployment, one job execution, one workflow or
pipeline run, one image written, one pending intervention and its one mail), or asked again only with
the same idempotency key (an http-request whose answer was lost with the host)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.app_service_emulator import AppServiceEmulator
from local.arm_deployments_emulator import ArmDeploymentsEmulator
from local.azure_devops_emulator import AzureDevOpsEmulator
from local.container_apps_emulator import ContainerAppsEmulator
from local.github_emulator import GitHubEmulator
from local.storage_policies import InjectedCrash
from shared import bootstrap
from shared.adapters.arm_app_service import ArmAppService
from shared.adapters.arm_deployments import ArmDeployments
from shared.config import STEPS_QUEUE, Settings
from shared.domain.target import Target
from shared.schemas.release import ReleaseIn
from shared.services import releases, sweeper
from tests.integration.conftest import SUB, World, stage
from tests.integration.test_http_request import Service
from tests.integration.test_interventions import CHECK
from tests.integration.test_stage_engines import (  # noqa: F401  (fixtures)
    MIGRATE,
    SMOKE,
    SPEC,
    TEMPLATE,
    apps,
    azdo,
    azure_step,
    github,
)

pytestmark = pytest.mark.azurite

INFRA = {"type": "arm-deployment", "name": "infrastructure", "templateSpecId": SPEC,
         "parameters": {"name": "tailspin$(Release.ReleaseId)"}}


@pytest.fixture
def arm(world: World) -> Iterator[ArmDeploymentsEmulator]:
    with ArmDeploymentsEmulator() as emulator:
        emulator.add_resource_group(SUB, "rg-tailspin")
        emulator.add_template_spec(SPEC, TEMPLATE)
        world.deps.arm_deployments = ArmDeployments(Settings(deployments_endpoint=emulator.url,
                                                             arm_auth="local-emulator"))
        yield emulator


def crash_every_call_of_the_first_step(world: World, definition_id: int, check: object,
                                       release: Callable[[int], Any] | None = None) -> int:
    """For k = 1, 2, …: a new release (by `release`, else `world.release`) whose first step's handler dies
    at its k-th storage call, then the queue delivers the message again; `check(release_id, k)` after it
    settled. Returns how many calls."""
    crash_at = 0
    while True:
        crash_at += 1
        rel = (release or world.release)(definition_id)
        [msg] = world.receive()
        world.crash.arm(crash_at)
        try:
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
            crashed = False
        except InjectedCrash:
            crashed = True
            world.crash.arm(None)
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)  # the queue redelivers it
        world.crash.arm(None)
        world.queue().delete_message(msg)
        world.pump()
        for _ in range(2):  # an outbox row is sent a lease after it was written, a lost step message two after due
            world.clock.advance(61)
            sweeper.sweep(world.deps)
            world.pump()
        check(rel.id, crash_at)  # type: ignore[operator]
        if not crashed:
            return crash_at


def test_an_arm_deployment_survives_a_crash_at_every_storage_call_and_deploys_once(
        world: World, arm: ArmDeploymentsEmulator) -> None:
    did = int(world.define([stage("Production", steps=[INFRA])])["id"])

    def check(rid: int, at: int) -> None:
        dep = world.get(rid).stages["Production"].current
        assert dep.status == "succeeded", (at, dep.failure)
        assert dep.steps[0].state["outputs"] == {"account": f"tailspin{rid}"}, at
        puts = [r for r in arm.requests if r.method == "PUT" and f"slipway-{rid}-" in r.path]  # type: ignore[attr-defined]
        assert len(puts) == 1, f"crash at storage call {at}: {len(puts)} deployments"

    assert crash_every_call_of_the_first_step(world, did, check) > 4


def test_an_http_request_survives_a_crash_at_every_storage_call_with_one_idempotency_key(world: World) -> None:
    from shared.adapters.http_probe import HttpxProbe

    world.deps.probe = HttpxProbe("127.0.0.1")
    service = Service()
    try:
        did = int(world.define([stage("Production", steps=[{"type": "http-request", "url": service.url}])])["id"])

        def check(rid: int, at: int) -> None:
            dep = world.get(rid).stages["Production"].current
            assert dep.status == "succeeded", (at, dep.failure)
            keys = {c["headers"]["Idempotency-Key"] for c in service.calls if f"slipway-{rid}-" in
                    c["headers"]["Idempotency-Key"]}
            assert len(keys) == 1, at

        assert crash_every_call_of_the_first_step(world, did, check) >= 4  # read, claim, intent, result
    finally:
        service.server.shutdown()


def production(world: World, rid: int) -> Any:
    return world.get(rid).stages["Production"].current


def test_a_script_survives_a_crash_at_every_storage_call_and_runs_once(
        world: World, apps: ContainerAppsEmulator) -> None:  # noqa: F811
    did = int(world.define([stage("Production", steps=[MIGRATE])])["id"])

    def check(rid: int, at: int) -> None:
        dep = production(world, rid)
        assert dep.status == "succeeded", (at, dep.failure)
        assert dep.steps[0].state["outputs"]["exitCode"] == "0", at
        mine = [e for e in apps.executions("migrate") if e.env.get("SLIPWAY_RUN", "").startswith(f"r{rid}.")]
        assert len(mine) == 1, f"crash at storage call {at}: {len(mine)} executions"

    assert crash_every_call_of_the_first_step(world, did, check) > 4


def test_a_github_workflow_survives_a_crash_at_every_storage_call_and_is_dispatched_once(
        world: World, github: GitHubEmulator) -> None:  # noqa: F811
    did = int(world.define([stage("Production", steps=[SMOKE])])["id"])

    def check(rid: int, at: int) -> None:
        dep = production(world, rid)
        assert dep.status == "succeeded", (at, dep.failure)
        runs = [r for r in github.runs.values() if r.inputs["slipway_run"].startswith(f"slipway-r{rid}-")]
        assert len(runs) == 1, f"crash at storage call {at}: {len(runs)} workflow runs"
        assert dep.steps[0].state["outputs"]["runId"] == str(runs[0].id), at

    assert crash_every_call_of_the_first_step(world, did, check) > 4
    assert github.dispatches == len(github.runs)


def test_an_azure_pipelines_run_survives_a_crash_at_every_storage_call_and_is_started_once(
        world: World, azdo: AzureDevOpsEmulator) -> None:  # noqa: F811
    did = int(world.define([stage("Production", steps=[azure_step(azdo)])])["id"])

    def check(rid: int, at: int) -> None:
        dep = production(world, rid)
        assert dep.status == "succeeded", (at, dep.failure)
        runs = [r for r in azdo.runs.values()
                if r.template_parameters.get("slipway_run", "").startswith(f"slipway-r{rid}-")]
        assert len(runs) == 1, f"crash at storage call {at}: {len(runs)} pipeline runs"

    assert crash_every_call_of_the_first_step(world, did, check) > 4
    assert azdo.started_runs == len(azdo.runs)


CANARY = Target(SUB, "rg-tailspin", "tailspin", "production-canary")


@pytest.fixture
def slots(world: World) -> Iterator[AppServiceEmulator]:
    with AppServiceEmulator() as emulator:
        emulator.restart_seconds = 0.0
        emulator.add_site(SUB, "rg-tailspin", "tailspin", slots=["production-canary"], stack="PYTHON|3.11")
        world.deps.app_service = ArmAppService(Settings(arm_endpoint=emulator.url, arm_auth="local-emulator",
                                                        slot_url_scheme="http"))
        yield emulator


def test_a_container_deployment_survives_a_crash_at_every_storage_call_and_writes_the_image_once(
        world: World, slots: AppServiceEmulator) -> None:
    from tests.integration.test_deploy_container import REGISTRY, build_package  # type: ignore[attr-defined]
    image = slots.push_image(REGISTRY, build_package("2.0.0"))
    digest = image.rsplit(":", 1)[1]
    did = int(world.define([stage("Production", steps=[{"type": "deploy-container", "image": image}],
                                  slot="production-canary")])["id"])

    def release(definition_id: int) -> Any:
        body = ReleaseIn.model_validate({"definitionId": definition_id, "description": "",
                                         "artifacts": [{"alias": "web", "version": "2.0.0", "sha256": digest}]})
        return releases.create(world.deps, body, by="amita")[0]

    def writes() -> int:
        return sum(1 for method, path in slots.requests if method == "PATCH" and path.endswith("/config/web"))

    def check(rid: int, at: int) -> None:
        dep = production(world, rid)
        assert dep.status == "succeeded", (at, dep.failure)
        settings = world.deps.app_service.read_slot(CANARY).app_settings
        assert settings["SLIPWAY_RELEASE_ID"] == str(rid), at
        assert writes() == 1, f"crash at storage call {at}: the image was written {writes()} times"

    assert crash_every_call_of_the_first_step(world, did, check, release) >= 4  # 3 calls at least: read, claim, result


def intervention_mails(world: World, rid: int) -> int:
    name = world.get(rid).name
    return len([m for m in world.deps.mailer.sent  # type: ignore[attr-defined]
                if m["to"] == ["tim@contoso.com"] and str(m["subject"]).endswith(f"/ {name} \u2192 Production")])


def test_a_manual_intervention_survives_a_crash_at_every_storage_call_with_one_pending_and_its_mail(
        world: World) -> None:
    # the intervention starts when the step before it ends: that step's handler commits it and its mail
    did = int(world.define([stage("Production", steps=[{"type": "wait", "seconds": 0}, CHECK])])["id"])

    def check(rid: int, at: int) -> None:
        dep = production(world, rid)
        assert dep.status == "inProgress" and dep.phase == "manualIntervention", (at, dep.failure)
        assert [s.status for s in dep.steps] == ["succeeded", "inProgress"], at
        assert dep.steps[1].state["intervention"]["status"] == "pending", at
        assert intervention_mails(world, rid) >= 1, f"crash at storage call {at}: the mail was lost"

    assert crash_every_call_of_the_first_step(world, did, check) > 4


def test_a_host_dying_before_the_outbox_delete_does_not_mail_the_assignee_twice(world: World) -> None:
    did = int(world.define([stage("Production", steps=[{"type": "wait", "seconds": 0}, CHECK])])["id"])
    rel = world.release(did)
    [msg] = world.receive()
    world.crash.arm(1, match=r"^DELETE .*outbox")  # the mail message went out; deleting its outbox item did not
    with pytest.raises(InjectedCrash):
        bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
    world.crash.arm(None)
    world.queue().delete_message(msg)
    world.pump()
    world.clock.advance(61)
    sweeper.sweep(world.deps)
    world.pump()
    assert production(world, rel.id).steps[1].state["intervention"]["status"] == "pending"
    assert intervention_mails(world, rel.id) == 1
