"""Stage tasks on other engines, through the release engine: approvers see what an ARM deployment will
change before they approve (release page, approval page, mail), and abandoning a release stops what
an engine runs for it (an ARM deployment, a Container Apps job execution)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from functions import approval_links
from functions import releases_api as rels
from local.arm_deployments_emulator import ArmDeploymentsEmulator
from local.azure_devops_emulator import AzureDevOpsEmulator
from local.container_apps_emulator import SAMPLE_IMAGE, ContainerAppsEmulator
from local.github_emulator import GitHubEmulator
from local.monitor_emulator import MonitorEmulator
from shared import bootstrap
from shared.adapters.arm_deployments import ArmDeployments
from shared.adapters.azure_pipelines import AzurePipelines
from shared.adapters.container_jobs import ContainerJobs
from shared.adapters.github_actions import GitHubActions
from shared.config import MAIL_QUEUE, STEPS_QUEUE, Settings
from shared.domain.access import Principal
from shared.services import approvals
from tests.integration.conftest import SUB, World, stage
from tests.integration.test_approvals_api import AMITA
from tests.integration.test_github_actions import DictSecrets
from tests.integration.test_http_api import api, call  # noqa: F401  (fixture)

SPEC = f"/subscriptions/{SUB}/resourceGroups/rg-tailspin/providers/Microsoft.Resources/templateSpecs/data/versions/1.0"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
TEMPLATE = {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "parameters": {"name": {"type": "string"}},
            "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
                           "name": "[parameters('name')]", "location": "[resourceGroup().location]",
                           "properties": {"minimumTlsVersion": "TLS1_2"}}],
            "outputs": {"account": {"type": "string", "value": "[parameters('name')]"}}}
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


def test_approvers_see_what_the_infrastructure_will_change_before_they_approve(
        api: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    production = {**stage("Production", steps=[INFRA, {"type": "wait", "name": "settle", "seconds": 0}]),
                  "preApprovals": {"approvers": ["tim@contoso.com"]}}
    did = int(api.define([production])["id"])
    rel = api.release(did)
    api.pump()
    dep = api.get(rel.id).stages["Production"].current
    assert dep.phase == "preApproval"
    assert dep.previews["0"]["changes"] == [
        f"+ create /subscriptions/{SUB}/resourceGroups/rg-tailspin/providers/Microsoft.Storage/storageAccounts/"
        f"tailspin{rel.id}"]
    assert not arm.deployments  # a what-if deploys nothing
    mail = next(m for m in api.deps.mailer.sent if m["to"] == ["tim@contoso.com"])  # type: ignore[attr-defined]
    assert "What the infrastructure steps will change (what-if):" in mail["text"]
    assert f"storageAccounts/tailspin{rel.id}" in mail["text"]
    token = re.search(r"/api/approve/([A-Za-z0-9_-]+)", str(mail["text"]))[1]  # type: ignore[index]
    page = approval_links.approval_page(func.HttpRequest("GET", f"http://localhost/api/approve/{token}", body=b"",
                                                         route_params={"token": token})).get_body().decode()
    assert "What the infrastructure will change" in page and f"storageAccounts/tailspin{rel.id}" in page
    view = call(rels.release_item, "GET", releaseId=rel.id)[1]
    assert view["stages"][0]["deployments"][0]["whatIf"][0]["name"] == "infrastructure"
    approvals.cast_vote(api.deps, rel.id, "Production", "pre", Principal("tim@contoso.com"), "approve", "",
                        attempt=None, if_match=None)
    api.pump()
    dep = api.get(rel.id).stages["Production"].current
    assert dep.status == "succeeded", dep.failure
    assert dep.steps[0].state["outputs"] == {"account": f"tailspin{rel.id}"}
    assert len([r for r in arm.requests if r.method == "PUT"]) == 1  # type: ignore[attr-defined]


def deliver_until(world: World, done: Any, limit: int = 50, clock: World | None = None) -> None:
    """Run step messages one at a time (a pump would run a long deployment to its end) until `done()`;
    with `clock`, moving the world's clock on by each message's delay."""
    for _ in range(limit):
        if done():
            return
        msgs = world.receive()
        for msg in msgs[:1]:
            if clock is not None:
                clock.clock.advance(clock.bus.delays.pop(msg.content, 0.0))
            bootstrap.react(world.deps, STEPS_QUEUE, msg.content, msg.id)
            world.queue().delete_message(msg)
        if not msgs:
            time.sleep(0.05)
    raise AssertionError("never got there")


def test_abandoning_the_release_cancels_its_running_arm_deployment(
        api: World, arm: ArmDeploymentsEmulator) -> None:  # noqa: F811
    arm.deployment_polls = 10_000  # it stays running
    api.deps.settings = dataclasses.replace(api.deps.settings, step_wait_seconds=0)  # between looks, abandoned
    did = int(api.define([stage("Production", steps=[INFRA])])["id"])
    rel = api.release(did)
    deliver_until(api, lambda: any(d.state == "Running" for d in arm.deployments.values()))
    assert call(rels.abandon_release, "POST", {"comment": "wrong build"}, releaseId=rel.id, headers=AMITA)[0] == 200
    api.deliver(STEPS_QUEUE)
    (deployment,) = arm.deployments.values()
    assert deployment.state == "Canceled"
    assert api.get(rel.id).stages["Production"].current.steps[0].status == "canceled"


@pytest.fixture
def apps(world: World) -> Iterator[ContainerAppsEmulator]:
    with MonitorEmulator() as monitor, ContainerAppsEmulator() as emulator:
        emulator.feed(monitor)
        emulator.retry_after = "0"
        emulator.stop_grace_seconds = 1.0
        env = f"/subscriptions/{SUB}/resourceGroups/rg-db/providers/Microsoft.App/managedEnvironments/env-db"
        emulator.add_job(SUB, "rg-db", "migrate", env, log_workspace_id="6f1c1f3e-0000-4000-8000-00000000c0de")
        world.deps.container_jobs = ContainerJobs(Settings(container_apps_endpoint=emulator.url,
                                                           logs_endpoint=monitor.url, arm_auth="local-emulator"))
        yield emulator


def test_abandoning_the_release_stops_its_running_script(api: World, apps: ContainerAppsEmulator) -> None:  # noqa: F811
    script = {**MIGRATE, "env": {"MIGRATION_COUNT": "100", "MIGRATION_DELAY": "0.5"}}
    did = int(api.define([stage("Production", steps=[script])])["id"])
    rel = api.release(did)
    deliver_until(api, lambda: bool(apps.executions("migrate")))
    assert call(rels.abandon_release, "POST", {"comment": "wrong build"}, releaseId=rel.id, headers=AMITA)[0] == 200
    api.deliver(STEPS_QUEUE)
    deadline = time.monotonic() + 10
    while apps.executions("migrate")[0].status == "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert apps.executions("migrate")[0].status == "Stopped"
    api.deliver(MAIL_QUEUE)


MIGRATE_JOB = f"/subscriptions/{SUB}/resourceGroups/rg-db/providers/Microsoft.App/jobs/migrate"
MIGRATE = {"type": "script", "name": "migrate", "job": MIGRATE_JOB, "image": SAMPLE_IMAGE,
           "env": {"MIGRATION_COUNT": "2", "MIGRATION_DELAY": "0"}}
REPO, TOKEN_SECRET = "contoso/tailspin", "https://kv-slipway.vault.azure.net/secrets/github-token"
GITHUB_TOKEN = "ghs_" + "W0r1" * 9
SMOKE = {"type": "run-pipeline", "name": "smoke", "repository": REPO, "workflow": "smoke.yml",
         "inputs": {"release": "$(Release.ReleaseName)"}, "tokenSecret": TOKEN_SECRET}
ADO_ORG, ADO_PROJECT = "contoso", "web"


def moved_by(world: World) -> Callable[[], datetime]:
    """An engine's clock: wall time (the adapters look for runs of the last day by theirs), moved on as the
    world's fake clock moves (runs progress as the pump moves it)."""
    start, wall = world.clock.now(), datetime.now(UTC)
    return lambda: wall + (world.clock.now() - start)


@pytest.fixture
def github(world: World) -> Iterator[GitHubEmulator]:
    """The GitHub emulator on the world's clock (its runs move on as the pump moves the clock), and the
    world's run-pipeline steps signing in with a token from a dictionary Key Vault."""
    with GitHubEmulator() as gh:
        gh.now = moved_by(world)
        gh.add_repo(REPO)
        gh.add_token(GITHUB_TOKEN, repos=[REPO])
        gh.add_workflow(REPO, "smoke.yml", name="Smoke", inputs={"slipway_run": {"type": "string"},
                                                                 "release": {"type": "string"}},
                        run_name_template="Smoke ${{ inputs.slipway_run }}", steps=["42 passed"], seconds=30)
        gh.add_workflow(REPO, "slow.yml", inputs={"slipway_run": {"type": "string"}, "release": {"type": "string"}},
                        run_name_template="Slow ${{ inputs.slipway_run }}", seconds=7200)
        world.deps.pipelines = GitHubActions(Settings(github_api_url=gh.url))
        world.deps.secrets = DictSecrets({TOKEN_SECRET: GITHUB_TOKEN})
        yield gh


@pytest.fixture
def azdo(world: World) -> Iterator[AzureDevOpsEmulator]:
    """The Azure DevOps emulator on the world's clock, with an Entra identity that may queue and stop runs."""
    with AzureDevOpsEmulator() as emulator:
        emulator.now = moved_by(world)
        emulator.add_project(ADO_ORG, ADO_PROJECT)
        emulator.add_token("local-emulator", orgs=[ADO_ORG])
        for name, seconds in (("smoke", 30), ("slow", 7200)):
            emulator.add_pipeline(ADO_ORG, ADO_PROJECT, name, seconds=seconds, steps=["42 passed"],
                                  parameters={"slipway_run": {"type": "string", "default": " "},
                                              "release": {"type": "string", "default": " "}})
        world.deps.azure_pipelines = AzurePipelines(Settings(azure_devops_url=emulator.url,
                                                             arm_auth="local-emulator"))
        yield emulator


def azure_step(azdo: AzureDevOpsEmulator, pipeline: str = "smoke") -> dict[str, Any]:
    pid = next(p.id for p in azdo.pipelines.values() if p.name == pipeline)
    return {"type": "run-pipeline", "name": pipeline, "provider": "azure-pipelines",
            "organization": f"https://dev.azure.com/{ADO_ORG}", "project": ADO_PROJECT, "pipelineId": pid,
            "templateParameters": {"release": "$(Release.ReleaseName)"}}


def test_abandoning_the_release_cancels_its_running_github_workflow(
        api: World, github: GitHubEmulator) -> None:  # noqa: F811
    did = int(api.define([stage("Production", steps=[{**SMOKE, "workflow": "slow.yml"}])])["id"])
    rel = api.release(did)
    deliver_until(api, lambda: any(r.status_at(github.now()) == "in_progress" for r in github.runs.values()),
                  clock=api)
    assert call(rels.abandon_release, "POST", {"comment": "wrong build"}, releaseId=rel.id, headers=AMITA)[0] == 200
    api.deliver(STEPS_QUEUE)
    api.clock.advance(github.cancel_seconds + 1)
    (run,) = github.runs.values()
    now = github.now()
    assert (run.status_at(now), run.conclusion_at(now)) == ("completed", "cancelled")
    assert github.dispatches == 1
    assert api.get(rel.id).stages["Production"].current.steps[0].status == "canceled"


def test_abandoning_the_release_cancels_its_running_azure_pipelines_run(
        api: World, azdo: AzureDevOpsEmulator) -> None:  # noqa: F811
    did = int(api.define([stage("Production", steps=[azure_step(azdo, "slow")])])["id"])
    rel = api.release(did)
    deliver_until(api, lambda: any(r.status_at(azdo.now()) == "inProgress" for r in azdo.runs.values()),
                  clock=api)
    assert call(rels.abandon_release, "POST", {"comment": "wrong build"}, releaseId=rel.id, headers=AMITA)[0] == 200
    api.deliver(STEPS_QUEUE)
    api.clock.advance(azdo.cancel_seconds + 1)
    (run,) = azdo.runs.values()
    now = azdo.now()
    assert (run.status_at(now), run.result_at(now)) == ("completed", "canceled")
    assert azdo.started_runs == 1
    assert api.get(rel.id).stages["Production"].current.steps[0].status == "canceled"
